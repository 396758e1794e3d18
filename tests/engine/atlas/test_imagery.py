"""GeoTIFF tiling: tile centres and footprints against independent transforms, nodata, bad rasters."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod, Transformer
from rasterio.transform import Affine

from engine.atlas.imagery import ImagerySource
from engine.errors import ConfigError, ImageFileError
from engine.geo import web_mercator_to_lonlat
from tests.engine.atlas.handmade import mercator_scene, write_geotiff

GEOD = Geod(ellps="WGS84")


def _pixel_corners_to_lonlat(path: Path, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The independent path: the file's geotransform applied by hand, then pyproj (not rasterio.warp)."""
    import rasterio

    with rasterio.open(path) as ds:
        a, b, c, d, e, f = ds.transform.a, ds.transform.b, ds.transform.c, ds.transform.d, ds.transform.e, ds.transform.f
        epsg = ds.crs.to_epsg()
    x, y = a * px + b * py + c, d * px + e * py + f
    lon, lat = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def test_utm_tiles_match_pyproj(imagery: Path) -> None:
    path = imagery / "RGB.byte.tif"
    with ImagerySource(path) as src:
        grid = src.grid(tile_size_m=15000)
        # 300.04 m pixels: 15 km is 50 px; the UTM scale factor here (2.7 degrees off the central
        # meridian) changes ground sizes by under 0.1 %, far from a 1 px rounding step.
        assert (grid.tile_w, grid.tile_h) == (50, 50)
        assert (grid.cols, grid.rows) == (791 // 50, 718 // 50)
        cols, rows = np.meshgrid(np.arange(grid.cols), np.arange(grid.rows))
        cols, rows = cols.ravel(), rows.ravel()
        lon, lat, fp = src.footprints(grid, cols, rows)
    exp_lon, exp_lat = _pixel_corners_to_lonlat(path, cols * 50 + 25.0, rows * 50 + 25.0)
    _, _, metres = GEOD.inv(lon, lat, exp_lon, exp_lat)
    assert np.max(metres) < 1.0
    for k, (dx, dy) in enumerate([(0, 0), (50, 0), (50, 50), (0, 50)]):  # TL, TR, BR, BL
        c_lon, c_lat = _pixel_corners_to_lonlat(path, cols * 50.0 + dx, rows * 50.0 + dy)
        _, _, metres = GEOD.inv(fp[:, k, 0], fp[:, k, 1], c_lon, c_lat)
        assert np.max(metres) < 1.0
    # The scene's centre is documented as about 77.758 W, 24.560 N.
    centre = np.argmin(np.hypot(lon + 77.758, lat - 24.56))
    assert abs(lon[centre] + 77.758) < 0.1 and abs(lat[centre] - 24.56) < 0.1
    # Tiles are square on the ground: 50 px x 300.04 m = 15.0 km along both edges (ellipsoidal distance).
    _, _, top = GEOD.inv(fp[:, 0, 0], fp[:, 0, 1], fp[:, 1, 0], fp[:, 1, 1])
    _, _, left = GEOD.inv(fp[:, 0, 0], fp[:, 0, 1], fp[:, 3, 0], fp[:, 3, 1])
    assert np.allclose(top, 15000, rtol=0.003) and np.allclose(left, 15000, rtol=0.003)


def test_geographic_tiles_are_hand_computable(imagery: Path) -> None:
    with ImagerySource(imagery / "world.rgb.tif") as src:
        grid = src.grid(tile_px=32)
        assert (grid.cols, grid.rows) == (16, 8)
        cols, rows = np.array([0, 5, 15]), np.array([0, 3, 7])
        lon, lat, fp = src.footprints(grid, cols, rows)
    step = 32 * 0.703125  # 22.5 degrees per tile
    np.testing.assert_allclose(lon, -180 + (cols + 0.5) * step, atol=1e-9)
    np.testing.assert_allclose(lat, 90 - (rows + 0.5) * step, atol=1e-9)
    np.testing.assert_allclose(fp[1], [[-67.5, 22.5], [-45.0, 22.5], [-45.0, 0.0], [-67.5, 0.0]], atol=1e-9)


def test_web_mercator_scene_ground_size_and_nodata(tmp_path: Path) -> None:
    path, rgb, geo = mercator_scene(tmp_path / "scene_3857.tif")
    x0, y0, res = geo["x0"], geo["y0"], geo["res"]
    _, lat_c = web_mercator_to_lonlat(x0 + 320 * res, y0 - 256 * res)
    ground_px = res * math.cos(math.radians(float(lat_c)))  # Web Mercator metres shrink by cos(lat) on the ground
    with ImagerySource(path) as src:
        grid = src.grid(tile_size_m=64 * ground_px)
        assert (grid.tile_w, grid.tile_h, grid.cols, grid.rows) == (64, 64, 10, 8)
        # Hand computation: inverse spherical Mercator of the tile centres.
        cols, rows = np.meshgrid(np.arange(10), np.arange(8))
        cols, rows = cols.ravel(), rows.ravel()
        lon, lat, _ = src.footprints(grid, cols, rows)
        exp_lon = np.degrees((x0 + (cols * 64 + 32) * res) / 6378137.0)
        exp_lat = np.degrees(2 * np.arctan(np.exp((y0 - (rows * 64 + 32) * res) / 6378137.0)) - np.pi / 2)
        np.testing.assert_allclose(lon, exp_lon, atol=1e-7)
        np.testing.assert_allclose(lat, exp_lat, atol=1e-7)
        # Valid fractions: the 128 px left border and 64 px top border are whole tiles of nodata; the
        # bottom row keeps 24 of 64 px rows.
        for col, row, expected in [(0, 3, 0.0), (1, 5, 0.0), (4, 0, 0.0), (2, 1, 1.0), (9, 6, 1.0), (5, 7, 24 / 64)]:
            tile, valid = src.read_tile(grid, col, row, 32)
            assert valid == pytest.approx(expected, abs=1 / 32)
            if expected == 1.0:  # flat 64 px blocks: the tile is its block's colour
                assert (tile == rgb[row * 64, col * 64]).all()


def test_bad_rasters_get_one_line_errors(tmp_path: Path, imagery: Path) -> None:
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00" + np.random.default_rng(0).bytes(5000))
    truncated = tmp_path / "truncated.tif"  # its directory is at the end: cut off
    truncated.write_bytes((imagery / "RGB.byte.tif").read_bytes()[:600_000])
    whole = write_geotiff(tmp_path / "whole.tif", np.full((300, 400, 3), 7, np.uint8), "EPSG:32633",
                          Affine(10, 0, 500000, 0, -10, 4000000))
    truncated_pixels = tmp_path / "truncated_pixels.tif"  # its directory is at the start: pixels cut off
    truncated_pixels.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    pixels = np.full((100, 120, 3), 90, np.uint8)
    no_crs = write_geotiff(tmp_path / "no_crs.tif", pixels, None, Affine(10, 0, 500000, 0, -10, 4000000))
    no_transform = tmp_path / "no_transform.tif"
    with pytest.warns(Warning):  # rasterio warns about a dataset without georeferencing
        write_geotiff(no_transform, pixels, None, Affine.identity())
    cases = [
        (corrupt, {}, "cannot be opened as a raster", "re-export"),
        (truncated, {}, "truncated, corrupt", "re-copy"),
        (truncated_pixels, {}, "truncated or corrupt (cannot read its pixels", "re-copy"),
        (empty, {}, "empty", "re-copy"),
        (tmp_path / "absent.tif", {}, "not found", "check the path"),
        (no_crs, {}, "no coordinate reference system", "--assume-crs"),
        (no_transform, {}, "no georeferencing", "gdal_translate"),
    ]
    for path, kwargs, problem, fix in cases:
        with pytest.raises(ImageFileError) as info:
            ImagerySource(path, **kwargs)
        message = str(info.value)
        assert message.startswith(str(path)) and problem in message and fix in message and "\n" not in message

    with ImagerySource(no_crs, assume_crs="EPSG:32633") as src:  # refused without, accepted with the option
        assert src.crs.to_epsg() == 32633
        grid = src.grid(tile_px=40)
        assert (grid.cols, grid.rows) == (3, 2)
        with pytest.raises(ImageFileError, match="smaller than one tile"):
            src.grid(tile_px=128)
    with pytest.raises(ConfigError, match="--assume-crs"):
        ImagerySource(no_crs, assume_crs="EPSG:notanumber")
    with ImagerySource(imagery / "RGB.byte.tif") as src:
        with pytest.raises(ImageFileError, match=r"200 m tile spans only 1 px") as info:
            src.grid(tile_size_m=200)
        # The suggestion is the smallest tile of 8 px: 8 x ~300 m (within the 1 % UTM/sphere spread).
        suggested = int(re.search(r"--tile-size-m (\d+) or more", str(info.value)).group(1))
        assert 8 * 300.04 * 0.99 < suggested < 8 * 300.04 * 1.01


def test_overview_is_web_mercator(imagery: Path) -> None:
    path = imagery / "RGB.byte.tif"
    with ImagerySource(path) as src:
        rgba, (west, south, east, north) = src.overview(max_px=256)
    h, w, _ = rgba.shape
    assert max(h, w) <= 257 and rgba.dtype == np.uint8
    # Independent: the raster's outline through pyproj to EPSG:3857.
    n = 50
    t = np.linspace(0, 1, n)
    px = np.concatenate([t * 791, np.full(n, 791.0), t * 791, np.zeros(n)])
    py = np.concatenate([np.zeros(n), t * 718, np.full(n, 718.0), t * 718])
    lon, lat = _pixel_corners_to_lonlat(path, px, py)
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lon, lat)
    pixel = (east - west) / w
    assert abs(west - x.min()) < 1.5 * pixel and abs(east - x.max()) < 1.5 * pixel
    assert abs(south - y.min()) < 1.5 * pixel and abs(north - y.max()) < 1.5 * pixel
    # The Landsat scene is rotated inside its frame with nodata corners: the overview's corners are
    # transparent and its middle is opaque.
    assert rgba[0, 0, 3] == 0 and rgba[-1, -1, 3] == 0 and rgba[h // 2, w // 2, 3] == 255


def test_sixteen_bit_and_paletted_rasters_become_rgb(tmp_path: Path) -> None:
    import rasterio

    transform = Affine(10, 0, 500000, 0, -10, 4000000)
    # uint16 reflectances 1000..3000: stretched between their 2nd and 98th percentiles.
    ramp = np.tile(np.linspace(1000, 3000, 200), (100, 1)).astype(np.uint16)
    with rasterio.open(tmp_path / "u16.tif", "w", driver="GTiff", width=200, height=100, count=3, dtype="uint16",
                       crs="EPSG:32633", transform=transform) as dst:
        dst.write(np.stack([ramp, ramp, ramp]))
    with ImagerySource(tmp_path / "u16.tif") as src:
        lo, hi = np.percentile(ramp, [2, 98])
        assert src.stretch[0] == pytest.approx([lo, hi], rel=0.01)
        grid = src.grid(tile_px=50)
        left, _ = src.read_tile(grid, 0, 0, 50)
        right, _ = src.read_tile(grid, 3, 0, 50)
        assert left[:, :3].max() == 0 and right[:, -3:].min() == 255  # clipped below lo / above hi
        assert 100 < src.read_tile(grid, 2, 0, 50)[0].mean() < 200
    # One band with a colour table: 0 -> water blue, 1 -> forest green.
    classes = np.zeros((100, 100), np.uint8)
    classes[:, 50:] = 1
    with rasterio.open(tmp_path / "pal.tif", "w", driver="GTiff", width=100, height=100, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=transform) as dst:
        dst.write(classes, 1)
        dst.write_colormap(1, {0: (20, 60, 200, 255), 1: (30, 140, 40, 255)})
    with ImagerySource(tmp_path / "pal.tif") as src:
        grid = src.grid(tile_px=50)
        assert (src.read_tile(grid, 0, 0, 50)[0] == (20, 60, 200)).all()
        assert (src.read_tile(grid, 1, 1, 50)[0] == (30, 140, 40)).all()


def test_a_vrt_mosaic_of_geotiffs_builds_as_one_source_with_the_same_tiles(tmp_path: Path, bundle) -> None:
    """The documented way to build from more files than a manifest handles well: one GDAL VRT of them."""
    import rasterio

    from engine.atlas import build_atlas, open_atlas

    rng = np.random.default_rng(4)
    parts = []
    for k, (c, r) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        rgb = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        parts.append((write_geotiff(tmp_path / f"p{k}.tif", rgb, "EPSG:32632",
                                    Affine(4.0, 0, 690000 + c * 256, 0, -4.0, 5340000 - r * 256)), c, r))
    with rasterio.open(parts[0][0]) as ds:
        wkt = ds.crs.to_wkt()
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}">' + "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="1">{p.name}</SourceFilename><SourceBand>{b}</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="64" ySize="64"/>'
            f'<DstRect xOff="{c * 64}" yOff="{r * 64}" xSize="64" ySize="64"/></SimpleSource>' for p, c, r in parts)
        + "</VRTRasterBand>" for b in (1, 2, 3))
    vrt = tmp_path / "mosaic.vrt"  # what gdalbuildvrt writes, by hand (no GDAL tools in the test machine)
    vrt.write_text(f'<VRTDataset rasterXSize="128" rasterYSize="128"><SRS>{wkt}</SRS>'
                   f"<GeoTransform>690000, 4, 0, 5340000, 0, -4</GeoTransform>{bands}</VRTDataset>")
    args = {"tile_px": 32, "thumbnail_px": 16, "search_index": False}
    build_atlas(tmp_path / "files", bundle.path, imagery=[p for p, _, _ in parts], **args)
    build_atlas(tmp_path / "vrt", bundle.path, imagery=[vrt], **args)
    files, mosaic = open_atlas(tmp_path / "files"), open_atlas(tmp_path / "vrt")
    assert len(files.sources) == 4 and len(mosaic.sources) == 1 and len(mosaic.tiles) == len(files.tiles) == 16

    def by_place(atlas) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        order = np.lexsort((np.round(atlas.tiles.lon, 9), np.round(atlas.tiles.lat, 9)))
        return np.stack([atlas.tiles.lon, atlas.tiles.lat], 1)[order], np.asarray(atlas.tiles.embeddings)[order]

    (where_f, emb_f), (where_v, emb_v) = by_place(files), by_place(mosaic)
    np.testing.assert_allclose(where_v, where_f, atol=1e-9)
    np.testing.assert_allclose(emb_v, emb_f, atol=1e-5)  # the same pixels, read through the VRT

    # A member changed since: the VRT source has changed (the VRT file itself has not).
    import os

    from engine.errors import AtlasError

    member = parts[2][0]
    later = member.stat().st_mtime_ns + 5_000_000_000
    os.utime(member, ns=(later, later))
    with pytest.raises(AtlasError, match="changed since it was added"):
        build_atlas(tmp_path / "vrt", bundle.path, imagery=[vrt], **args)
