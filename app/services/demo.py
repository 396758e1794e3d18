"""First launch: the demo world generated into the user data folder, then its atlas built with the
shipped demo bundle. Both steps keep what they finished: an interrupted world generation starts over
in a fresh folder (the half-written one is never used), an interrupted atlas build resumes."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import DatasetError
from engine.progress import Job

if TYPE_CHECKING:
    from engine.bundle.format import Bundle

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
    """Generate the demo world into ``paths.world`` (the generator writes a hidden folder and renames
    it at the end, so an interrupted run never leaves a world that looks complete).

    Returns:
        The world folder.
    Raises:
        Cancelled: stopped by the user (nothing is left behind).
    """
    from engine.demo_world import generate_world

    if world_ready(paths.world):
        return paths.world
    paths.root.mkdir(parents=True, exist_ok=True)
    if paths.world.exists():  # an incomplete world from an older version: start again
        shutil.rmtree(paths.world)
    generate_world(paths.world, seed=DEMO_SEED, size=size, workers=workers, job=job)
    return paths.world


def world_tile_size_m(world: Path) -> float | None:
    """The tile size the world suggests (its paired images' ground size), or None if it does not say."""
    import json

    try:
        info = json.loads((world / "world.json").read_text(encoding="utf-8"))
        size = info.get("suggested_tile_size_m") or info.get("image_size_m")
        return float(size) if size else None
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def world_imagery(world: Path) -> list[Path]:
    """The demo world's aerial mosaic (not its land-cover map)."""
    mosaic = world / "mosaic.tif"
    if mosaic.is_file():
        return [mosaic]
    tifs = sorted(p for p in world.glob("*.tif") if "land_cover" not in p.name and not p.name.startswith("."))
    if not tifs:
        raise DatasetError(world, "the demo world has no GeoTIFF mosaic", "delete the folder and start the app again")
    return tifs


def build_demo_atlas(paths: DemoPaths, bundle: Bundle, job: Job | None = None) -> Path:
    """Build (or resume building) the demo atlas from the demo world with ``bundle``.

    Returns:
        The atlas folder.
    """
    from engine.atlas import build_atlas

    # Tiles as wide as the ground the model looked at in training (the bundle says); for a bundle that
    # does not say, as wide as the world's paired images. An existing atlas keeps its own tile size.
    tile_size = None
    if not (paths.atlas / "atlas.json").exists() and not getattr(bundle, "ground_size_m", None):
        tile_size = world_tile_size_m(paths.world)
    build_atlas(paths.atlas, bundle, imagery=world_imagery(paths.world), recordings=paths.world / "pairs.csv",
                tile_size_m=tile_size, job=job)
    add_shipped_indices(paths)
    return paths.atlas


def add_shipped_indices(paths: DemoPaths, folder: Path | None = None) -> str:
    """Store the acoustic indices shipped in ``resources/`` (computed once for the seed-0 default world)
    in the demo atlas, so it shows index layers without scikit-maad; another world gets none (the layer
    chooser says how to add them). Never fails the demo: a problem is logged and returned."""
    from engine.ecology.shipped import import_shipped_indices
    from engine.errors import UserInputError

    try:
        note = import_shipped_indices(paths.atlas, paths.world, folder or shipped_indices_folder())
    except (OSError, ValueError, KeyError, UserInputError) as err:
        note = f"demo atlas without acoustic indices: the shipped table could not be read ({err})"
    log.info("%s", note)
    return note


def shipped_indices_folder() -> Path:
    """Where ``demo-indices.csv`` / ``.json`` ship: ``resources/``."""
    from app.services.project import resources_dir

    return resources_dir()


def upgrade_demo_atlas(atlas: Path, root: Path) -> None:
    """Before opening ``atlas``: if it is the demo atlas (in ``root``) and lacks the shipped indices (built
    by an older version), add them. Any other atlas is left alone."""
    paths = DemoPaths(root)
    try:
        is_demo = atlas.resolve() == paths.atlas.resolve()
    except OSError:
        return
    if is_demo and world_ready(paths.world) and (paths.atlas / "atlas.json").is_file():
        add_shipped_indices(paths)
