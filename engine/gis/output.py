"""Writing an export atomically: to a temporary file in the target folder, renamed over the target at the end."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from engine.errors import UserInputError


class ExportError(UserInputError):
    """An export that cannot be written (folder missing, read-only or full) or has nothing to write."""


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed.

    Raises:
        ExportError: the folder cannot be written (one line naming the file and the fix).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the real extension last: GDAL's drivers (GeoPackage) check it
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial" + path.suffix, dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise ExportError(path, f"cannot be written ({err.strerror or type(err).__name__})",
                          "choose a writable folder") from None
    tmp_path = Path(tmp)
    tmp_path.unlink()  # writers (GDAL, pyogrio) create the file themselves
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except OSError as err:
        raise ExportError(path, f"cannot be written ({err.strerror or type(err).__name__})",
                          "choose a writable folder with free space") from None
    finally:
        for leftover in (tmp_path, tmp_path.with_name(tmp_path.name + ".aux.xml")):
            leftover.unlink(missing_ok=True)
