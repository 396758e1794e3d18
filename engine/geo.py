"""Geodesy the engine and the app share (torch-free): great-circle distances, Web Mercator, and moving
raster coordinates to WGS84 longitude/latitude."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

# The sphere of the SoundingEarth paper's evaluation (its D@k): used for every great-circle distance in
# the engine (evaluation, the blocked split's cells, atlas queries), so that kilometres agree everywhere.
EARTH_RADIUS_KM = 6371.0
KM_PER_DEGREE = 2 * math.pi * EARTH_RADIUS_KM / 360.0  # along a great circle
WGS84_A_M = 6378137.0
WGS84_E2 = 6.69437999014e-3  # first eccentricity squared of the WGS84 ellipsoid
WEB_MERCATOR_RADIUS_M = 6378137.0
WEB_MERCATOR_MAX_LAT = 85.0511287798066  # where EPSG:3857 makes the world square


class GeoTransform(Protocol):
    """A raster's pixel -> CRS affine map (rasterio's ``dataset.transform``, an ``affine.Affine``):
    x = a*col + b*row + c, y = d*col + e*row + f."""

    a: float
    b: float
    c: float
    d: float
    e: float
    f: float


def haversine_km(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Great-circle distance in km between points given in degrees, on a sphere of
    :data:`EARTH_RADIUS_KM` (broadcasts like numpy)."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def local_ground_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Distance in metres between nearby points on the WGS84 ellipsoid (degrees in, broadcasts).

    Uses the ellipsoid's radii of curvature at the mean latitude (meridional M, prime vertical N):
    exact to first order, with a relative error of about (distance / 6,400 km)^2, i.e. under 1e-5 for
    points within 20 km. A sphere would be up to 0.5 % off (east-west at high latitudes), enough to
    make ground-square tiles of a UTM raster a pixel wider than high.
    """
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2))
    phi = (lat1 + lat2) / 2
    w2 = 1.0 - WGS84_E2 * np.sin(phi) ** 2
    meridional = WGS84_A_M * (1.0 - WGS84_E2) / w2 ** 1.5
    prime_vertical = WGS84_A_M / np.sqrt(w2)
    dlon = (lon2 - lon1 + np.pi) % (2 * np.pi) - np.pi
    return np.hypot(meridional * (lat2 - lat1), prime_vertical * np.cos(phi) * dlon)


def wrap_lon(lon: ArrayLike) -> np.ndarray:
    """Longitudes in degrees moved by whole turns into [-180, 180) (180.5 -> -179.5; broadcasts)."""
    return np.mod(np.asarray(lon, dtype=np.float64) + 180.0, 360.0) - 180.0


def unwrap_lon(lon: ArrayLike, reference: ArrayLike) -> np.ndarray:
    """``lon`` moved by whole turns to lie within 180 degrees of ``reference``: the corners of a tile that
    straddles the antimeridian stay next to each other (179.9 and 180.1, not 179.9 and -179.9)."""
    reference = np.asarray(reference, dtype=np.float64)
    return reference + wrap_lon(np.asarray(lon, dtype=np.float64) - reference)


def contiguous_lon_rule(lon: ArrayLike) -> tuple[float | None, float]:
    """How :func:`contiguous_lon` places ``lon``: ``(reference, shift)`` for :func:`place_lon` (reference None:
    the longitudes are kept as given, then shifted). Lets a caller place a few tiles of a large image the way
    the whole image is placed, without all of its longitudes at hand."""
    lon = np.asarray(lon, dtype=np.float64)
    finite = lon[np.isfinite(lon)]
    if finite.size == 0:
        return None, 0.0
    reference = float(finite[0])
    unwrapped = unwrap_lon(finite, reference)
    span_given = float(finite.max() - finite.min())
    span_unwrapped = float(unwrapped.max() - unwrapped.min())
    keep = span_unwrapped < min(180.0, span_given)
    west = float(unwrapped.min()) if keep else float(finite.min())
    turns = round((float(wrap_lon(west)) - west) / 360.0)  # whole turns exactly (wrap_lon rounds in the last bits)
    return (reference if keep else None), 360.0 * turns


def place_lon(lon: ArrayLike, reference: float | None, shift: float) -> np.ndarray:
    """Longitudes placed by a :func:`contiguous_lon_rule`: unwrapped around ``reference`` (if any), then
    moved by ``shift`` (whole turns)."""
    lon = np.asarray(lon, dtype=np.float64)
    return (unwrap_lon(lon, reference) if reference is not None else lon) + shift


def contiguous_lon(lon: ArrayLike) -> np.ndarray:
    """Longitudes of one image placed side by side: moved by whole turns so that a set across the
    antimeridian reads 179.9, 180.1 rather than 179.9, -179.9, then shifted by a whole turn, if needed,
    so the westernmost is in [-180, 180). A set that spans half the world or more either way (a global
    image) is left as given. NaN stays NaN."""
    return place_lon(lon, *contiguous_lon_rule(lon))


def lonlat_to_web_mercator(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees -> EPSG:3857 metres (latitudes clamped to the projection's +-85.05 degrees)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.clip(np.asarray(lat, dtype=np.float64), -WEB_MERCATOR_MAX_LAT, WEB_MERCATOR_MAX_LAT)
    x = WEB_MERCATOR_RADIUS_M * np.radians(lon)
    y = WEB_MERCATOR_RADIUS_M * np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))
    return x, y


def web_mercator_to_lonlat(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:3857 metres -> WGS84 degrees."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    lon = np.degrees(x / WEB_MERCATOR_RADIUS_M)
    lat = np.degrees(2 * np.arctan(np.exp(y / WEB_MERCATOR_RADIUS_M)) - np.pi / 2)
    return lon, lat


def to_lonlat(crs: object, xs: ArrayLike, ys: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in ``crs`` (anything rasterio's ``CRS.from_user_input`` accepts) -> WGS84 (lon, lat) in degrees, through PROJ.

    Longitude comes first whatever axis order the CRS declares (rasterio's traditional GIS order).
    """
    from rasterio.crs import CRS
    from rasterio.warp import transform

    xs = np.asarray(xs, dtype=np.float64).ravel()
    ys = np.asarray(ys, dtype=np.float64).ravel()
    if xs.size == 0:
        return xs, ys
    lon, lat = transform(CRS.from_user_input(crs), CRS.from_epsg(4326), xs, ys)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def apply_affine(affine: GeoTransform, px: ArrayLike, py: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (column, row) coordinates -> the raster's CRS coordinates through its geotransform."""
    px = np.asarray(px, dtype=np.float64)
    py = np.asarray(py, dtype=np.float64)
    return affine.a * px + affine.b * py + affine.c, affine.d * px + affine.e * py + affine.f


def ground_pixel_size_m(crs: object, affine: GeoTransform, width: int, height: int) -> tuple[float, float]:
    """The ground size (metres) of one pixel along a row and along a column, measured at the raster's
    centre on the WGS84 ellipsoid (:func:`local_ground_m`). Right for any CRS: metres, degrees, or Web
    Mercator (whose 'metres' grow by about 1/cos(latitude) on the ground)."""
    cx, cy = width / 2, height / 2
    step = max(1.0, min(width, height) / 20)  # long enough to be exact, short enough to stay local
    px = np.array([cx - step / 2, cx + step / 2, cx, cx])
    py = np.array([cy, cy, cy - step / 2, cy + step / 2])
    xs, ys = apply_affine(affine, px, py)
    lon, lat = to_lonlat(crs, xs, ys)
    dx = float(local_ground_m(lon[0], lat[0], lon[1], lat[1])) / step
    dy = float(local_ground_m(lon[2], lat[2], lon[3], lat[3])) / step
    return dx, dy
