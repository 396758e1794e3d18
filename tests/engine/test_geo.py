"""Geodesy shared by evaluation, splits and atlases: one sphere for great-circle km, the ellipsoid for
ground pixel sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod, Proj
from rasterio.crs import CRS
from rasterio.transform import Affine

from engine.data.splits import KM_PER_DEGREE as SPLIT_KM_PER_DEGREE
from engine.evaluate import haversine_km as evaluation_haversine
from engine.geo import ground_pixel_size_m, haversine_km, local_ground_m

GEOD = Geod(ellps="WGS84")


def test_one_sphere_for_every_great_circle_distance() -> None:
    # The reference implementation's D@k uses R = 6371 km: one degree of the equator is 6371 pi / 180 km.
    assert haversine_km(0, 0, 1, 0) == pytest.approx(6371.0 * math.pi / 180, rel=1e-12)
    assert evaluation_haversine is haversine_km
    assert SPLIT_KM_PER_DEGREE == pytest.approx(6371.0 * math.pi / 180, rel=1e-15)


@pytest.mark.parametrize("lat", [0.0, 45.0, 54.3, 70.0, -33.0])
def test_local_ground_distance_matches_the_ellipsoid(lat: float) -> None:
    rng = np.random.default_rng(int(lat * 10) % 1000)
    lon1 = rng.uniform(-179.9, 179.9, 50)
    lat1 = np.full(50, lat)
    azimuth, metres = rng.uniform(0, 360, 50), rng.uniform(10, 20_000, 50)
    lon2, lat2, _ = GEOD.fwd(lon1, lat1, azimuth, metres)
    np.testing.assert_allclose(local_ground_m(lon1, lat1, lon2, lat2), metres, rtol=1e-5)
    # Across the antimeridian too.
    assert local_ground_m(179.999, lat, -179.999, lat) == pytest.approx(GEOD.inv(179.999, lat, -179.999, lat)[2],
                                                                         rel=1e-5)


def test_utm_pixels_are_measured_square_on_the_ground() -> None:
    # 4 m pixels of UTM 32N at 9.94 E, 54.31 N (the tiny demo world): on the ground each is 4 m divided by
    # the UTM scale factor there, the same along a row and a column.
    affine = Affine(4.0, 0.0, 560_000.0, 0.0, -4.0, 6_020_000.0)
    gx, gy = ground_pixel_size_m(CRS.from_epsg(32632), affine, 512, 512)
    factors = Proj("EPSG:32632").get_factors(9.9383, 54.3150)
    expected = 4.0 / factors.meridional_scale
    assert gx == pytest.approx(expected, rel=2e-5) and gy == pytest.approx(expected, rel=2e-5)
