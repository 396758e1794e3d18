"""SIGINT and SIGTERM stop a long command the same way: cleanly, keeping the work done (torch-free).

Ctrl-C sends SIGINT; schedulers and supervisors (Slurm, Docker, systemd, torchrun, the app's Cancel)
send SIGTERM. The first of either cancels the command's :class:`~engine.progress.Job`: the command
stops at its next check, saves what it has (a training run writes ``last`` and an ``end`` event with
status ``interrupted``; an atlas build or a cache keeps its finished parts) and exits with status 130.
A second signal interrupts at once (``KeyboardInterrupt``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.progress import Job

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(job: Job, what: str = "the current step") -> Iterator[None]:
    """While inside, SIGINT or SIGTERM cancels ``job``; a second one raises KeyboardInterrupt.

    Signal handlers can only be set from the main thread; elsewhere (the app's worker threads, which
    cancel the job themselves) this does nothing.

    Args:
        job: the job to cancel.
        what: where the command stops, for the warning line (e.g. "the current step").
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if job.cancelled:
            raise KeyboardInterrupt
        job.cancel()
        name = signal.Signals(signum).name
        log.warning("%s: stopping after %s and keeping the work done (send it again to abort at once)", name, what)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
