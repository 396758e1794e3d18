"""An exclusive lock on a folder that one process writes: a run folder or an atlas (torch-free).

The lock is ``FOLDER/.lock``, held with ``flock`` (``msvcrt.locking`` on Windows) for as long as the
writer lives. The kernel drops it when the process ends however it ends (exit, exception, SIGKILL), so a
lock file left behind by a dead process never blocks the next writer. The holder writes its pid into the
file so that a second writer can say who holds it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from engine.errors import FolderBusyError, UserInputError

LOCK_NAME = ".lock"


class FolderLock:
    """Take the lock of ``folder`` (created if absent) or fail at once.

    Use as a context manager, or call :meth:`release`.

    Args:
        folder: the folder to lock.
        subject: how the error names it (default: the folder path), e.g. ``"--out RUN"``.
        busy: the problem text of the error.
        fix: the fix text of the error.
    Raises:
        FolderBusyError: another live process holds the lock (the message names its pid).
        UserInputError: the folder cannot be made or written (e.g. the path is a file).
    """

    def __init__(self, folder: str | Path, subject: str | None = None,
                 busy: str = "is being written by another process",
                 fix: str = "wait for it to finish or stop it") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._file: IO[bytes] | None = open(self.path, "a+b")  # noqa: SIM115 - closed in release()
        except OSError as err:  # e.g. the path is a file, or a read-only place
            raise UserInputError(subject or self.folder, f"cannot be used as a folder ({err.strerror or err})",
                                 "choose another folder") from None
        if not _try_lock(self._file):
            holder = _read_pid(self._file)
            self._file.close()
            self._file = None
            who = f" (pid {holder})" if holder else ""
            raise FolderBusyError(subject or self.folder, f"{busy}{who}", fix)
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n".encode())
        self._file.flush()

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        """Drop the lock (closing the file releases it); safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lock(file: IO[bytes]) -> bool:
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _read_pid(file: IO[bytes]) -> int | None:
    try:
        file.seek(0)
        text = file.read(32).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
