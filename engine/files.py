"""Writing files so that a crash, a full disk or a cancel never leaves a half-written one, and reading
the versioned JSON manifests of the engine's formats (torch-free).

Checkpoints, run configs, evaluation and downstream results, bundle manifests and atlas manifests are all
written through :func:`atomic_write_bytes`: a temporary file in the same folder, flushed and fsynced, then
renamed over the target in one step, so a reader sees the old file or the new one, never a mixture.
A full disk becomes a one-line :class:`~engine.errors.DiskFullError` naming the folder and the bytes
needed; a process killed mid-write leaves a ``.NAME.XXXXXXXX.tmp`` file that
:func:`remove_stale_temp_files` clears at the next start (under the folder's lock).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, Any, TypeVar

from engine.errors import DatasetError, DiskFullError, UserInputError

NEW_FILE_MODE = 0o644  # what open() gives under the usual umask 022
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# mkstemp's names: ".<target name>." + 8 characters of [a-z0-9_] + ".tmp" (see atomic_write_bytes).
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")
log = logging.getLogger(__name__)


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` (or the error it wraps) says that the disk or the quota is full."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
            return True
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def disk_full_error(path: str | Path, needed: int | None) -> DiskFullError:
    """The one-line error for a write into ``path``'s folder that ran out of space.

    Args:
        path: the file being written (the message names its folder).
        needed: about how many bytes the write needs (None: unknown).
    """
    folder = Path(path).parent
    try:
        free = f", {_megabytes(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = ""
    size = f"writing {Path(path).name} needs about {_megabytes(needed)}" if needed else f"cannot write {Path(path).name}"
    return DiskFullError(folder, f"the disk is full ({size}{free})",
                         "free some space there and run the command again (training: with --resume); "
                         "the previous file is intact")


class _WriteWatch:
    """A file wrapper that remembers the OSError of a failed write and counts bytes.

    ``torch.save`` turns a failed write into ``RuntimeError: [enforce fail at inline_container.cc]``;
    the wrapper keeps the real cause so a full disk is reported as one.
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file, self.error, self.written = file, None, 0

    def write(self, data: Any) -> int:
        try:
            n = self._file.write(data)
        except OSError as err:
            self.error = err
            raise
        self.written += len(data) if n is None else n
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def atomic_write_bytes(path: str | Path, write: Callable[[IO[bytes]], Any], size_hint: int | None = None) -> None:
    """Write through a temporary file in the same folder, fsync, then rename over ``path``.

    Args:
        path: the file to (re)write; its folder is created.
        write: called with the open binary temporary file.
        size_hint: about how many bytes will be written (named in a disk-full message).
    Raises:
        DiskFullError: the disk or quota is full (one line: the folder and the bytes needed).
        Whatever else ``write`` or the file system raises. Either way the old file is left intact and
        the temporary file removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file private (0600); the result gets the replaced file's mode, or the usual 0644.
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    watch: _WriteWatch | None = None
    try:
        with os.fdopen(fd, "wb") as f:
            watch = _WriteWatch(f)
            write(watch)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err) or (watch is not None and watch.error is not None and is_disk_full(watch.error)):
            written = watch.written if watch is not None else 0
            raise disk_full_error(path, max(size_hint or 0, written) or None) from err
        raise


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files :func:`atomic_write_bytes` left in ``folder`` when its process died.

    Call it only while holding the folder's lock (a live writer's temporary file would go too). Only
    names of our pattern (``.<name>.XXXXXXXX.tmp``) are touched.

    Returns:
        The files removed.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if _TEMP_NAME.match(entry.name) and entry.is_file():
            try:
                entry.unlink()
            except OSError as err:  # e.g. read-only: harmless, it is never read
                log.warning("could not remove the stale temporary file %s (%s)", entry, err)
                continue
            removed.append(entry)
    if removed:
        log.info("removed %d temporary file(s) an interrupted write left in %s", len(removed), folder)
    return removed


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    data = text.encode("utf-8")
    atomic_write_bytes(path, lambda f: f.write(data))


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (strict JSON readers reject them), recursively
    through dicts, lists and tuples (tuples become lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def read_manifest(path: str | Path, fmt: str, versions: Collection[int], error_cls: type[UserInputError], *,
                  what: str, version_key: str = "version", make: str, redo: str) -> dict[str, Any]:
    """Read a versioned JSON manifest (a run's config.json, a cache's index.json, a bundle's manifest.json,
    an atlas's atlas.json) and check its format tag and version.

    Args:
        path: the manifest file; its folder is what the errors name when the file is missing or of another
            version (the whole folder is then to be made again), the file itself when it is unreadable.
        fmt: the expected ``format`` value.
        versions: the versions this code reads.
        error_cls: the error raised (each format has its own :class:`UserInputError` subclass).
        what: what the folder should be, with its article (``"a model bundle"``), for the messages.
        version_key: the key holding the version (``version`` or ``format_version``).
        make: the fix when the folder is not one (how to make one).
        redo: the fix when the file is unreadable or of another version (how to make it again).
    Raises:
        ``error_cls``: missing, unreadable, not a JSON object, another format or an unsupported version.
    """
    path = Path(path)
    if not path.is_file():
        raise error_cls(path.parent, f"is not {what} (no {path.name})", make)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error_cls(path, f"unreadable ({type(err).__name__}: {str(err)[:80]})", redo) from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise error_cls(path, f"is not {what} (format {found!r}, expected {fmt!r})", make)
    if data.get(version_key) not in versions:
        readable = ", ".join(str(v) for v in sorted(versions))
        raise error_cls(path.parent, f"format version {data.get(version_key)!r} is not supported (this version reads "
                        f"{readable})", redo)
    return data


Filled = TypeVar("Filled")


def check_new_folder(out: Path, what: str) -> None:
    """``out`` may be written as a new folder: it does not exist, or is an empty folder (one line if not)."""
    if out.exists() and not out.is_dir():
        raise DatasetError(out, "exists and is a file", f"name a new folder for the {what}")
    if out.is_dir() and any(out.iterdir()):
        raise DatasetError(out, "exists and is not empty; refusing to write into it",
                           "name a new folder (or delete this one yourself)")


def write_whole_folder(out: str | Path, fill: Callable[[Path], Filled], what: str) -> Filled:
    """Make the new folder ``out`` whole or not at all: ``fill`` writes into a hidden sibling folder, which
    is renamed to ``out`` at the end; on any error or cancellation (or a full disk) it is removed.

    Args:
        out: the folder to create; it must not exist or be empty, checked before and again before the rename
            (what appeared meanwhile is never overwritten).
        fill: writes the contents into the folder it is given; its result is returned. A ``_scratch``
            subfolder it leaves is removed.
        what: what the folder holds, for messages ("demo world").
    Raises:
        DatasetError: ``out`` is a file or a non-empty folder, cannot be created, or the disk filled up (one
            line naming the folder and the fix).
    """
    out = Path(out).expanduser()
    check_new_folder(out, what)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        partial.mkdir(parents=True)
    except OSError as err:
        raise DatasetError(out, f"cannot create the folder ({err.strerror})", "choose a writable location") from None
    try:
        try:
            result = fill(partial)
        except OSError as err:  # a full disk, a folder that vanished: one line, nothing left behind
            raise DatasetError(out, f"could not write the {what} ({err.strerror or err})",
                               "free some disk space or choose another folder") from None
        shutil.rmtree(partial / "_scratch", ignore_errors=True)
        check_new_folder(out, what)
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return result
