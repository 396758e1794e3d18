"""Progress and cancellation for long computations, shared by the CLI (a tqdm bar) and the app
(worker threads that forward progress to the GUI). Torch-free and Qt-free."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from engine.errors import Cancelled

ProgressCallback = Callable[[int, "int | None", str], None]


class Job:
    """Handed to long-running functions: they call :meth:`report` and :meth:`check` in their loops.

    ``report(done, total, message)`` forwards to ``on_progress``; ``check()`` raises
    :class:`~engine.errors.Cancelled` once :meth:`cancel` was called (from any thread).
    """

    def __init__(self, on_progress: ProgressCallback | None = None) -> None:
        self._on_progress = on_progress
        self._cancel = threading.Event()

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        if self._on_progress is not None:
            self._on_progress(done, total, message)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the job was cancelled."""
        if self._cancel.is_set():
            raise Cancelled()


class TqdmJob(Job):
    """A job that draws a progress bar with rate and ETA on stderr (for the command line)."""

    def __init__(self, description: str, unit: str = "it", **tqdm_kwargs: Any) -> None:
        super().__init__(self._update)
        self._bar_args = {"desc": description, "unit": unit, "dynamic_ncols": True, **tqdm_kwargs}
        self._bar: Any = None

    def _update(self, done: int, total: int | None, message: str) -> None:
        if self._bar is None:
            # Drawn on the first report, so a command that stops on bad input prints only its error line.
            from tqdm import tqdm

            self._bar = tqdm(**self._bar_args)
        if message:
            self._bar.set_postfix_str(message, refresh=False)
        if total is not None and self._bar.total != total:
            # A new phase (or a resumed one): restart the clock at ``done`` so that the rate and the
            # ETA count only the work done from now on.
            self._bar.reset(total=total)
            self._bar.initial = self._bar.n = done
            self._bar.refresh()
        elif done >= self._bar.n:
            self._bar.update(done - self._bar.n)  # tqdm's update keeps a smoothed rate for the ETA
        else:
            self._bar.n = done
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> TqdmJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
