"""Geographic helpers for display: WGS84 lon/lat <-> Web Mercator (EPSG:3857), ground scale,
great-circle distance and a nice scale-bar length.

The map draws in EPSG:3857 metres because that is what web maps use and it keeps tiles square
locally; a Mercator metre is ``1 / cos(lat)`` ground metres, which the scale read-out corrects for.
"""

from __future__ import annotations

import math

import numpy as np

EARTH_RADIUS_M = 6_378_137.0  # the WGS84 semi-major axis, which EPSG:3857 uses as a sphere radius
MAX_LAT = 85.05112877980659  # where Web Mercator's square world ends
MEAN_EARTH_RADIUS_KM = 6371.0088


def lonlat_to_mercator(lon: np.ndarray | float, lat: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees -> EPSG:3857 metres (latitudes beyond +-85.0511 are clamped).

    Returns:
        (x, y) as float64 arrays (0-d for scalar input).
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.clip(np.asarray(lat, dtype=np.float64), -MAX_LAT, MAX_LAT)
    x = np.radians(lon) * EARTH_RADIUS_M
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * EARTH_RADIUS_M
    return x, y


def mercator_to_lonlat(x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:3857 metres -> WGS84 degrees (the inverse of :func:`lonlat_to_mercator`)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    lon = np.degrees(x / EARTH_RADIUS_M)
    lat = np.degrees(2 * np.arctan(np.exp(y / EARTH_RADIUS_M)) - np.pi / 2)
    return lon, lat


def ground_metres_per_mercator_metre(lat: float) -> float:
    """How many metres on the ground one EPSG:3857 metre covers at latitude ``lat``."""
    return math.cos(math.radians(max(-MAX_LAT, min(MAX_LAT, lat))))


def haversine_km(lon1: float, lat1: float, lon2: np.ndarray | float, lat2: np.ndarray | float) -> np.ndarray:
    """Great-circle distance in km on the mean Earth sphere."""
    p1, p2 = math.radians(lat1), np.radians(np.asarray(lat2, dtype=np.float64))
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=np.float64) - lon1)
    a = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * MEAN_EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def nice_length(max_metres: float) -> float:
    """The largest 1, 2 or 5 x 10^k metres that is at most ``max_metres`` (for a scale bar)."""
    if not max_metres > 0:
        raise ValueError("max_metres must be positive")
    power = 10.0 ** math.floor(math.log10(max_metres))
    for step in (5.0, 2.0, 1.0):
        if step * power <= max_metres * (1 + 1e-9):
            return step * power
    return power  # unreachable: 1 * power <= max_metres by construction


def format_length(metres: float) -> str:
    """'250 m', '1 km', '2.5 km' - how a scale bar labels a length."""
    if metres >= 1000:
        km = metres / 1000
        return f"{km:g} km"
    return f"{metres:g} m"


def format_lonlat(lon: float, lat: float) -> str:
    """'12.34567° E, 45.67890° N' - five decimals is about a metre."""
    ew = "E" if lon >= 0 else "W"
    ns = "N" if lat >= 0 else "S"
    return f"{abs(lon):.5f}° {ew}, {abs(lat):.5f}° {ns}"
