"""Processes that tests start, always reaped: each child leads its own session (process group), and the
whole group is killed on timeout and when the test ends, so no grandchild (a torchrun rank, a DataLoader
worker, the app's engine subprocess) outlives the test. Linux and macOS; on Windows plain subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

POSIX = os.name == "posix"


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL if POSIX else 9) -> None:
    """Send ``sig`` to the process group ``proc`` leads (or to ``proc`` alone on Windows)."""
    if POSIX:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    elif proc.poll() is None:
        proc.kill()


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid`` (Linux /proc; [] elsewhere)."""
    members = []
    proc_root = Path("/proc")
    if not proc_root.is_dir():
        return members
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def wait_group_gone(pgid: int, timeout: float = 10.0) -> list[int]:
    """Wait until no live process is left in group ``pgid``; returns those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    alive = group_members(pgid)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = group_members(pgid)
    return alive


@contextmanager
def reaped_popen(cmd: Sequence[str], **kwargs: Any) -> Iterator[subprocess.Popen]:
    """``subprocess.Popen`` in a new session; on leaving, the whole group is killed and the child waited."""
    proc = subprocess.Popen(list(cmd), start_new_session=POSIX, **kwargs)
    try:
        yield proc
    finally:
        kill_group(proc)
        try:
            proc.communicate(timeout=30)
        except (subprocess.TimeoutExpired, ValueError):
            proc.kill()


def run_reaped(cmd: Sequence[str], timeout: float, *, capture_output: bool = True, text: bool = True,
               check_orphans: bool = False, **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run`` whose child and all its descendants end with it.

    The child leads a new session; on timeout the whole group is killed (and TimeoutExpired raised, with
    the output so far); after a normal exit, whatever is left of the group is killed too.

    Args:
        check_orphans: fail (AssertionError) when, after the child exited, processes of its group are
            still alive 10 s later (e.g. a torchrun rank that never exited); they are killed either way.
    """
    if capture_output:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
    with reaped_popen(cmd, text=text, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(proc.args, timeout, output=out, stderr=err) from None
        orphans = wait_group_gone(proc.pid) if check_orphans and POSIX else []
    if orphans:
        raise AssertionError(f"{cmd[:4]}...: exited with {proc.returncode} but left processes {orphans} "
                             "of its group alive")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def python_env(**changes: str) -> dict[str, str]:
    """This environment with the repository on PYTHONPATH (for ``python -m engine.cli`` children)."""
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": root, **changes}


PYTHON = sys.executable
