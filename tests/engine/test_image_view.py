"""The image encoder sees the same ground at the same scale in evaluation and in an atlas.

Training and evaluation show the encoder the central ``image_region x eval_scale`` of each stored
image; the export records that ground width as the bundle's ``image.ground_size_m``; an atlas cuts its
tiles at that ground size. Here an atlas tile centred on a test pair of the tiny demo world is compared
with the evaluation view of that pair's image, and with a tile cut at the whole image's width (the
mistake this test is there to catch).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from pyproj import Proj
from rasterio.warp import transform
from rasterio.windows import Window

from engine.atlas import build_atlas, locate_tile, open_atlas
from engine.augment import center_views
from engine.bundle.format import load_bundle
from engine.config.run import RunConfig
from engine.data.source import open_source
from engine.inference.encoders import BundleEncoders
from engine.inference.images import prepare_image


def _crop_around(mosaic: Path, col: int, row: int, size: int, out: Path) -> Path:
    """A plain GeoTIFF of ``size`` x ``size`` mosaic pixels centred on the pixel corner (col, row)."""
    with rasterio.open(mosaic) as ds:
        window = Window(col - size // 2, row - size // 2, size, size)
        profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8", "crs": ds.crs,
                   "transform": ds.window_transform(window), "photometric": "RGB"}
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(ds.read([1, 2, 3], window=window))
    return out


def test_an_atlas_tile_shows_what_evaluation_shows(demo_world_tiny: Path, demo_run_tiny: Path,
                                                   demo_bundle_tiny: Path, tmp_path: Path) -> None:
    world = json.loads((demo_world_tiny / "world.json").read_text())
    cfg = RunConfig.from_dict(json.loads((demo_run_tiny / "config.json").read_text()))
    bundle = load_bundle(demo_bundle_tiny)
    size = bundle.image_size
    view_m = world["image_size_m"] * cfg.data.image_region * cfg.augment.eval_scale
    assert bundle.ground_size_m == pytest.approx(view_m, abs=1e-3)
    # A tile of view_m in mosaic pixels: the mosaic's 4 m are 4 m / k on the ground (k: UTM scale factor).
    west, north, px = world["bounds"]["west"], world["bounds"]["north"], world["pixel_size_m"]
    lon_c, lat_c = world["bounds_wgs84"]["west"], world["bounds_wgs84"]["north"]
    ground_px = px / Proj(world["crs"]).get_factors(lon_c, lat_c).meridional_scale
    tile_px, whole_px = round(view_m / ground_px), round(world["image_size_m"] / ground_px)
    assert (tile_px, whole_px) == (54, 64)  # both even: a tile can be centred on a pixel corner
    source = open_source(demo_world_tiny, cfg.data, cfg.front_end)
    mosaic = demo_world_tiny / world["mosaic"]
    for i in source.indices("test"):  # the first test pair with room for the larger tile around it
        record = source.records[i]
        (x,), (y,) = transform("EPSG:4326", world["crs"], [record.lon], [record.lat])
        col, row = round((x - west) / px), round((north - y) / px)
        if whole_px // 2 <= min(col, row) and max(col, row) + whole_px // 2 <= min(world["mosaic_px"]):
            break
    else:
        pytest.fail("no test pair far enough from the mosaic's edge")
    assert abs((x - west) / px - col) < 0.01 and abs((north - y) / px - row) < 0.01  # points sit on corners

    # What evaluation shows the encoder: the centre view of the stored region, as the bundle's 8-bit input.
    region = torch.from_numpy(np.array(source.image(i))).permute(2, 0, 1)[None]
    view = (center_views(region, size, cfg.augment.eval_scale)[0] * 255).round().byte().permute(1, 2, 0).numpy()
    encoders = BundleEncoders(bundle)
    view_embedding = encoders.embed_images(view[None])[0]

    results = {}
    for name, crop_px, tile_size_m in (("bundle", tile_px, None), ("whole image", whole_px, world["image_size_m"])):
        tif = _crop_around(mosaic, col, row, crop_px, tmp_path / f"{name}.tif")
        build_atlas(tmp_path / name, demo_bundle_tiny, imagery=[tif], tile_size_m=tile_size_m)
        atlas = open_atlas(tmp_path / name, demo_bundle_tiny)
        source_info = atlas.sources[0]
        assert len(atlas.tiles) == 1 and tuple(source_info.tile_px) == (crop_px, crop_px)
        t = locate_tile(atlas, record.lon, record.lat)
        assert t == 0
        # The tile is centred on the recording (to a thousandth of a metre-scale pixel).
        assert abs(atlas.tiles.lon[t] - record.lon) < 1e-6 and abs(atlas.tiles.lat[t] - record.lat) < 1e-6
        tile = prepare_image(atlas.thumbnail(t), size)  # the tile's pixels (its JPEG thumbnail) at the input size
        results[name] = (float(np.abs(tile.astype(float) - view.astype(float)).mean()),
                         float(np.linalg.norm(atlas.tiles.embeddings[t] - view_embedding)),
                         crop_px * ground_px)
    pixels, distance, ground_m = results["bundle"]
    # The same ground (within one encoder pixel) at the same scale: nearly the same pixels and embedding.
    assert abs(ground_m - view_m) < view_m / size
    assert pixels < 3.0  # mean absolute difference in 8-bit levels (two resampling chains and a JPEG)
    wrong_pixels, wrong_distance, _ = results["whole image"]
    assert wrong_pixels > 2 * pixels and wrong_distance > distance
    assert distance < 0.25 * np.linalg.norm(view_embedding)
