"""Writing files so that a crash, a full disk or a cancel never leaves a half-written one, and reading
the versioned JSON manifests of the engine's formats (torch-free).

Checkpoints, run configs, evaluation and downstream results, bundle manifests and atlas manifests are all
written through :func:`atomic_write_bytes`: a temporary file in the same folder, flushed and fsynced, then
renamed over the target in one step, so a reader sees the old file or the new one, never a mixture.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, Any

from engine.errors import UserInputError

NEW_FILE_MODE = 0o644  # what open() gives under the usual umask 022


def atomic_write_bytes(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write through a temporary file in the same folder, fsync, then rename over ``path``.

    Args:
        path: the file to (re)write; its folder is created.
        write: called with the open binary temporary file.
    Raises:
        Whatever ``write`` or the file system raises; the old file is then left intact and the temporary
        file removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file private (0600); the result gets the replaced file's mode, or the usual 0644.
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
