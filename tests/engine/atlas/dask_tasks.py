"""Task functions for the distributed-build tests, importable by Dask worker processes: a worker that
dies in the middle of a part, slow parts, and a worker that cannot see the imagery."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from engine.atlas.distributed import run_tile_part


def crash_once_on_part(marker: str, crash_part: int, spec: dict[str, Any], part: int) -> Any:
    """Kill this worker process (no cleanup, like the OOM killer) the first time ``crash_part`` runs."""
    if part == crash_part:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(1)
    return run_tile_part(spec, part)


def slow_part(seconds: float, spec: dict[str, Any], part: int) -> Any:
    """A part that takes at least ``seconds`` (so a test can stop the client in the middle of a build)."""
    time.sleep(seconds)
    return run_tile_part(spec, part)


def imagery_elsewhere(spec: dict[str, Any], part: int) -> Any:
    """A worker whose file system has the imagery at another place than the client's."""
    return run_tile_part({**spec, "path": str(Path("/nonexistent-mount") / Path(spec["path"]).name)}, part)


def always_failing(spec: dict[str, Any], part: int) -> Any:
    """A part that fails on every worker (say onnxruntime runs out of memory) from part 2 on."""
    if part >= 2:
        raise RuntimeError("onnxruntime: failed to allocate memory")
    return run_tile_part(spec, part)
