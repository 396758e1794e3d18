"""Writing files so that a crash, a full disk or a cancel never leaves a half-written one (torch-free).

Checkpoints, run configs, evaluation and downstream results, bundle manifests and atlas manifests are all
written through :func:`atomic_write_bytes`: a temporary file in the same folder, flushed and fsynced, then
renamed over the target in one step, so a reader sees the old file or the new one, never a mixture.
"""

from __future__ import annotations

import math
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

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
