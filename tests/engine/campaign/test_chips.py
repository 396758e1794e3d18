"""Chips cut at campaign sites match an independent transform of the site coordinates (pyproj)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Geod, Transformer
from rasterio.transform import from_origin
from scipy.ndimage import map_coordinates

from engine.campaign.chips import cached_site_chips, cut_chip

GEOD = Geod(ellps="WGS84")


def _gradient_tif(path: Path) -> tuple[str, object]:
    """A 200 x 200 GeoTIFF in UTM 32N (10 m pixels) whose red band is the column and green band the row."""
    crs, transform = "EPSG:32632", from_origin(600_000.0, 5_100_000.0, 10.0, 10.0)
    cols, rows = np.meshgrid(np.arange(200), np.arange(200))
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=3, dtype="uint8", crs=crs,
                       transform=transform) as dst:
        dst.write(np.stack([cols, rows, np.full_like(cols, 7)]).astype(np.uint8))
    return crs, transform


def _pixel_of(lon: float, lat: float, crs: str, transform: object) -> tuple[float, float]:
    """Fractional (col, row) of a point, pixel centres at integers (independent of the chip code)."""
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    col, row = ~transform @ (x, y)
    return col - 0.5, row - 0.5


def test_chip_follows_the_ground_around_the_site(tmp_path: Path) -> None:
    crs, transform = _gradient_tif(tmp_path / "grad.tif")
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(601_003.0, 5_098_987.0)
    ground, px = 400.0, 20  # 20 m chip pixels over 10 m source pixels
    chip, covered = cut_chip(tmp_path / "grad.tif", lon, lat, ground, px)
    assert chip.shape == (px, px, 3) and covered == 1.0
    assert np.all(chip[..., 2] == 7)
    for r, c in [(0, 0), (3, 17), (10, 10), (9, 9), (19, 5)]:
        east = -ground / 2 + (c + 0.5) * ground / px
        north = ground / 2 - (r + 0.5) * ground / px
        # The chip pixel's centre, walked on the ellipsoid from the site: east, then north.
        lon1, lat1, _ = GEOD.fwd(lon, lat, 90.0, east)
        lon2, lat2, _ = GEOD.fwd(lon1, lat1, 0.0, north)
        col, row = _pixel_of(lon2, lat2, crs, transform)
        assert abs(float(chip[r, c, 0]) - col) <= 1.0, (r, c)
        assert abs(float(chip[r, c, 1]) - row) <= 1.0, (r, c)


def test_chip_centre_matches_the_real_landsat_scene(realdata: Path) -> None:
    tif = realdata / "imagery" / "RGB.byte.tif"
    with rasterio.open(tif) as src:
        crs, transform = src.crs.to_string(), src.transform
        bands = src.read().astype(np.float64)
    to_wgs = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    for x, y in [(220_000.0, 2_720_000.0), (250_123.0, 2_700_456.0)]:
        lon, lat = to_wgs.transform(x, y)
        chip, covered = cut_chip(tif, lon, lat, 3000.0, 30)  # 100 m chip pixels over 300 m source pixels
        assert covered == 1.0
        col, row = _pixel_of(lon, lat, crs, transform)
        expected = [map_coordinates(b, [[row], [col]], order=1)[0] for b in bands]
        centre = chip[14:16, 14:16].reshape(-1, 3).astype(np.float64).mean(axis=0)
        assert np.allclose(centre, expected, atol=6.0), (centre, expected)


def test_site_outside_the_scene_is_missing_and_chips_are_cached(realdata: Path, tmp_path: Path) -> None:
    tif = realdata / "imagery" / "RGB.byte.tif"
    to_wgs = Transformer.from_crs("EPSG:32618", "EPSG:4326", always_xy=True)
    inside = ("in", *to_wgs.transform(220_000.0, 2_720_000.0))
    outside = ("corner", *to_wgs.transform(102_500.0, 2_826_000.0))  # the scene's empty (nodata) corner
    chips = cached_site_chips(tmp_path, [inside, outside], [tif], 1000.0, 16)
    assert chips.missing == ["corner"] and chips.sources == [str(tif), None]
    again = cached_site_chips(tmp_path, [inside, outside], [tif], 1000.0, 16)
    assert again.folder == chips.folder and np.array_equal(np.asarray(again.chips), np.asarray(chips.chips))
    other = cached_site_chips(tmp_path, [inside, outside], [tif], 2000.0, 16)
    assert other.folder != chips.folder


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_raster_without_crs_is_a_one_line_error(tmp_path: Path) -> None:
    from engine.errors import ImageFileError

    path = tmp_path / "plain.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8") as dst:
        dst.write(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ImageFileError, match="no coordinate reference system"):
        cut_chip(path, 9.0, 45.0, 100.0, 8)
