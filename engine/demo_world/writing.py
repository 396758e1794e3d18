"""Writing a world to disk: the GeoTIFFs (from memory maps, a strip at a time), the pair table,
``world.json`` and the folder's README."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window

from engine.demo_world.config import CLASSES, CRS

TILE_PX = 512
OVERVIEWS = (2, 4, 8, 16, 32)


def write_geotiffs(folder: Path, rgb: np.ndarray, land_class: Callable[[int, int], np.ndarray], west: float,
                   north: float, pixel_m: float, step: Callable[[], None]) -> None:
    """Write ``mosaic.tif`` (RGB, JPEG in YCbCr, 512 px tiles, overviews) and ``land_cover.tif``
    (class index, DEFLATE, colour table, overviews by mode). ``step`` is called between strips."""
    h, w = rgb.shape[:2]
    transform = from_origin(west, north, pixel_m, pixel_m)
    common = dict(driver="GTiff", width=w, height=h, crs=CRS, transform=transform, dtype="uint8", tiled=True,
                  blockxsize=TILE_PX, blockysize=TILE_PX)
    with rasterio.Env(GDAL_NUM_THREADS="1", COMPRESS_OVERVIEW="JPEG", PHOTOMETRIC_OVERVIEW="YCBCR",
                      JPEG_QUALITY_OVERVIEW="88", INTERLEAVE_OVERVIEW="PIXEL"):
        with rasterio.open(folder / "mosaic.tif", "w", count=3, compress="JPEG", photometric="YCBCR",
                           jpeg_quality=90, interleave="pixel", **common) as dst:
            for r0 in range(0, h, TILE_PX):
                strip = np.asarray(rgb[r0:r0 + TILE_PX])
                dst.write(np.moveaxis(strip, -1, 0), window=Window(0, r0, w, strip.shape[0]))
                step()
            dst.build_overviews(list(OVERVIEWS), Resampling.average)
            dst.update_tags(ns="rio_overview", resampling="average")
            dst.update_tags(SOURCE="Soundscape Mapper synthetic demo world", SYNTHETIC="yes")
            step()
    with rasterio.Env(GDAL_NUM_THREADS="1", COMPRESS_OVERVIEW="DEFLATE"):
        with rasterio.open(folder / "land_cover.tif", "w", count=1, compress="DEFLATE", photometric="PALETTE",
                           **common) as dst:
            dst.write_colormap(1, {c.index: tuple(int(c.colour[i:i + 2], 16) for i in (1, 3, 5)) + (255,)
                                   for c in CLASSES})
            for r0 in range(0, h, TILE_PX):
                strip = land_class(r0, min(h, r0 + TILE_PX))
                dst.write(strip[None], window=Window(0, r0, w, strip.shape[0]))
                step()
            dst.build_overviews(list(OVERVIEWS), Resampling.mode)
            dst.update_tags(ns="rio_overview", resampling="mode")
            dst.update_tags(1, **{f"CLASS_{c.index}": c.name for c in CLASSES})
            dst.set_band_description(1, "land cover class (see world.json)")
            step()


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    """The pair table (CSV, one row per recording, fixed column order)."""
    columns = list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def readme_text(world: dict[str, Any]) -> str:
    """The README placed in the world's folder: what the data is and how it was made."""
    classes = "\n".join(f"| {c.index} | {c.name} | {c.description} |" for c in CLASSES)
    b = world["bounds"]
    split = world["split"]
    return f"""# Soundscape Mapper demo world (synthetic)

**Everything in this folder is synthetic.** No image was photographed and no sound was recorded: a
program (`soundscape-engine demo-world`, module `engine.demo_world`) generated it all from the seed
{world['seed']} (size `{world['size']}`). The same seed and size give the same files. It exists so that
Soundscape Mapper works out of the box; use real data (SoundingEarth or your own recordings) for anything
else. You may use it freely.

## How it was made

- **Land cover.** A region of {world['extent_m'] / 1000:g} km x {world['extent_m'] / 1000:g} km on a
  real projected grid ({world['crs']}, bounds W {b['west']:.0f}, S {b['south']:.0f}, E {b['east']:.0f},
  N {b['north']:.0f} m) with a coast, a meandering river, lakes, a town with a street grid (dense centre,
  suburbs), villages, major roads, farmland parcels in strips whose orientation changes from farm to farm,
  forests (broadleaf and conifer), meadows and wetlands. Classes:

| index | class | what |
| --- | --- | --- |
{classes}

- **Imagery.** `mosaic.tif` renders the whole region at {world['pixel_size_m']:g} m per pixel: textures
  per class (crowns, roofs, furrows, tramlines, foam, reeds), sun shading and cast shadows, autumn-tinted
  stands, crop colours, cloud shadows, haze and flight-strip colour seams. `land_cover.tif` is the class
  map on the same grid. Each image in `images/` is the {world['image_px']} px ({world['image_size_m']:g} m)
  crop of the mosaic centred on its recording, so a model trained on them works on tiles cut from the
  mosaic (suggested tile size {world['suggested_tile_size_m']:g} m).
- **Sound.** Each recording ({world['audio']['seconds']:g} s, {world['audio']['sample_rate']} Hz mono FLAC)
  mixes per-class sound sources (surf and gulls, flowing and lapping water, wind in leaves, needles, reeds
  and crops, birdsong of ten call types, crickets, grasshoppers, bees, frogs, distant and passing traffic,
  tractors, mowers, voices, footsteps, hum, bells, dogs), each weighted by how much of its class lies
  around the point, weighted by distance (roads and surf carry farther than crickets). Events fall at
  random times; wind, bird activity and traffic vary per recording; background noise is added and the
  clip is set to a random gain between {world['audio']['gain_db'][0]:g} and {world['audio']['gain_db'][1]:g} dB.

## Files

- `pairs.csv`: one row per recording: `id, longitude, latitude` (WGS 84), `image`, `audio` (paths
  relative to this folder), `split`, `label` (the class covering most of the image), `lc_<class>` (the
  share of each class inside the image footprint), `title`, `license`.
- `images/*.jpg`, `audio/*.flac`, `mosaic.tif`, `land_cover.tif`, `world.json` (all parameters).

## Splits

The region is cut into {split['block_size_m']:g} m blocks; {split['blocks']['train']} blocks are train,
{split['blocks']['val']} val and {split['blocks']['test']} test (about 70/15/15, drawn from the seed). No
recording lies within {split['border_margin_m']:g} m of a border between blocks of different splits, so
test images never overlap training images.
"""
