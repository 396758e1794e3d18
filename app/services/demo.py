"""First launch: the demo world generated into the user data folder, then its atlas built with the
shipped demo bundle. Both steps keep what they finished: an interrupted world generation starts over
in a fresh folder (the half-written one is never used), an interrupted atlas build resumes."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import DatasetError
from engine.progress import Job

log = logging.getLogger(__name__)

DEMO_SEED = 0


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo lives in the user data folder."""

    root: Path

    @property
    def world(self) -> Path:
        return self.root / "demo-world"

    @property
    def atlas(self) -> Path:
        return self.root / "demo-atlas"


def world_ready(world: Path) -> bool:
    """True when a complete demo world is there (its pair table is written last)."""
    return (world / "pairs.csv").is_file()


def generate_demo_world(paths: DemoPaths, size: str = "default", job: Job | None = None,
                        workers: int | None = None) -> Path:
    """Generate the demo world into ``paths.world`` (a temporary folder renamed at the end).

    Returns:
        The world folder.
    Raises:
        Cancelled: stopped by the user (nothing half-written is left under the final name).
    """
    from engine.demo_world import generate_world

    if world_ready(paths.world):
        return paths.world
    paths.root.mkdir(parents=True, exist_ok=True)
    partial = paths.root / ".demo-world.partial"
    shutil.rmtree(partial, ignore_errors=True)
    generate_world(partial, seed=DEMO_SEED, size=size, workers=workers, job=job)
    if paths.world.exists():  # an incomplete earlier attempt
        shutil.rmtree(paths.world)
    partial.rename(paths.world)
    return paths.world


def world_imagery(world: Path) -> list[Path]:
    """The demo world's GeoTIFF mosaic(s)."""
    tifs = sorted(p for p in world.rglob("*.tif") if not p.name.startswith("."))
    if not tifs:
        raise DatasetError(world, "the demo world has no GeoTIFF mosaic", "delete the folder and start the app again")
    return tifs


def build_demo_atlas(paths: DemoPaths, bundle: Any, job: Job | None = None) -> Path:
    """Build (or resume building) the demo atlas from the demo world with ``bundle``.

    Returns:
        The atlas folder.
    """
    from engine.atlas import build_atlas

    build_atlas(paths.atlas, bundle, imagery=world_imagery(paths.world), recordings=paths.world / "pairs.csv",
                job=job)
    return paths.atlas
