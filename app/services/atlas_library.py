"""Atlases as the user's own objects: new atlases from imagery, and copy on write for the demo atlas.

The demo atlas the app builds on first launch is the reference every user starts from; adding imagery
to it or re-embedding it with another model works on a copy in the user's data folder (``atlases/``),
which the app then opens. Planning a new atlas (pixel size, tile grid, a warning when the image's
resolution is far from the model's training resolution) is here too. Qt-free.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.services import demo
from engine.errors import UserInputError
from engine.progress import Job

log = logging.getLogger(__name__)

# A tile narrower than this many pixels is refused by the engine (engine.atlas.imagery.MIN_TILE_PX).
MIN_TILE_PX = 8
# How far (as a ratio either way) an image's pixels may be from the model's training pixels unwarned.
RESOLUTION_TOLERANCE = 4.0
PREVIEW_PX = 320


def atlases_dir(data_dir: Path) -> Path:
    """Where the user's own atlases go."""
    return data_dir / "atlases"


def is_demo_atlas(atlas_path: str | Path, data_dir: Path) -> bool:
    """True for the demo atlas the app built on first launch (never modified: edits go to a copy)."""
    try:
        return Path(atlas_path).resolve() == demo.DemoPaths(data_dir).atlas.resolve()
    except OSError:
        return False


def unused_folder(parent: Path, name: str) -> Path:
    """``parent/name``, or ``parent/name-2``, ``-3``... whichever does not exist yet."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "atlas"
    candidate, n = parent / name, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{name}-{n}"
    return candidate


def copy_for_editing(atlas_path: Path, data_dir: Path) -> Path:
    """A copy of the atlas in ``atlases/`` (the original untouched). Returns the copy's folder."""
    target = unused_folder(atlases_dir(data_dir), f"{Path(atlas_path).name}-copy")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name("." + target.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(atlas_path, tmp)
    tmp.rename(target)  # a half-copied folder never looks like an atlas
    log.info("copied %s to %s before changing it", atlas_path, target)
    return target


# ------------------------------------------------------------------------------------ planning

@dataclass(frozen=True)
class ImagePlan:
    """What the New atlas dialog needs to know about one GeoTIFF.

    Attributes:
        path: the file.
        width, height: raster size in pixels.
        pixel_m: ground size of one pixel (the larger of x and y), metres.
        preview: (h, w, 3) uint8 overview for the grid preview.
    """

    path: Path
    width: int
    height: int
    pixel_m: float
    preview: np.ndarray

    def grid(self, tile_size_m: float) -> tuple[int, int, int]:
        """(columns, rows, tile pixels) for tiles ``tile_size_m`` wide (as the engine cuts them)."""
        tile_px = max(1, round(tile_size_m / self.pixel_m))
        return self.width // tile_px, self.height // tile_px, tile_px

    @property
    def smallest_tile_m(self) -> int:
        """The smallest tile size (whole metres) the engine accepts for this image."""
        return int(math.ceil(MIN_TILE_PX * self.pixel_m))


def inspect_image(path: str | Path) -> ImagePlan:
    """Open a GeoTIFF and measure it (pixel size on the ground, a small preview).

    Raises:
        ImageFileError: not a readable, georeferenced raster.
    """
    from rasterio.enums import Resampling

    from engine.atlas.imagery import ImagerySource, gdal_env
    from engine.geo import ground_pixel_size_m

    with gdal_env(), ImagerySource(path) as src:
        gx, gy = ground_pixel_size_m(src.crs, src.transform, src.width, src.height)
        # In the raster's own pixel grid (not reprojected), so the tile grid lines fall where the engine cuts.
        scale = max(1.0, max(src.width, src.height) / PREVIEW_PX)
        ow, oh = max(1, round(src.width / scale)), max(1, round(src.height / scale))
        data, _mask = src._read(None, ow, oh, Resampling.average)
        preview = src.to_rgb(data)
        return ImagePlan(Path(path), int(src.width), int(src.height), float(max(gx, gy)),
                         np.ascontiguousarray(preview[..., :3], dtype=np.uint8))


def suggested_tile_size_m(plan: ImagePlan, wanted_m: float) -> float:
    """``wanted_m`` if the engine can cut tiles that size from this image, else the smallest size it can."""
    return float(max(wanted_m, plan.smallest_tile_m))


def resolution_warning(pixel_m: float, model_m_per_px: float | None) -> str:
    """A sentence when the image's pixels are far from the model's training pixels ('' when close or unknown)."""
    if not model_m_per_px or not pixel_m > 0:
        return ""
    ratio = pixel_m / model_m_per_px
    if 1 / RESOLUTION_TOLERANCE <= ratio <= RESOLUTION_TOLERANCE:
        return ""
    coarse = ratio > 1
    return (f"This image has {pixel_m:.3g} m pixels; the model was trained on {model_m_per_px:.3g} m pixels "
            f"({ratio:.0f}x {'coarser' if coarse else 'finer'} here" if coarse else
            f"This image has {pixel_m:.3g} m pixels; the model was trained on {model_m_per_px:.3g} m pixels "
            f"({1 / ratio:.0f}x finer here") + (
        "). Fields, towns and water look different at this scale, so the predicted sounds are a rough guess; "
        "imagery near the training resolution gives the meaningful matches." if coarse else
        "). Tiles are shrunk to the model's input size, so fine detail is lost but matches stay meaningful.")


def build_new_atlas(out: Path, bundle_path: Path, images: list[Path], tile_size_m: float, job: Job) -> Path:
    """Build a new atlas at ``out`` from ``images`` with the bundle at ``bundle_path`` (resumable).

    Raises:
        UserInputError: every image failed (the engine's message names the file and the fix).
    """
    from engine.atlas import AtlasBuildError, build_atlas
    from engine.formats.bundle import load_bundle

    try:
        build_atlas(out, load_bundle(bundle_path), imagery=list(images), tile_size_m=float(tile_size_m), job=job)
    except AtlasBuildError:
        if not (out / "atlas.json").is_file():
            raise
        log.warning("some imagery of %s failed; the rest was kept", out)
    return out


__all__ = ["ImagePlan", "UserInputError", "build_new_atlas", "copy_for_editing", "inspect_image",
           "is_demo_atlas", "resolution_warning", "suggested_tile_size_m"]
