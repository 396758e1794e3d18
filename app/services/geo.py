"""Geographic helpers for display: WGS84 lon/lat <-> Web Mercator (EPSG:3857), ground scale,
great-circle distance and a nice scale-bar length.

The map draws in EPSG:3857 metres because that is what web maps use and it keeps tiles square
locally; a Mercator metre is ``1 / cos(lat)`` ground metres, which the scale read-out corrects for.
"""

from __future__ import annotations

import math

from engine.geo import WEB_MERCATOR_MAX_LAT, lonlat_to_web_mercator, web_mercator_to_lonlat
from engine.geo import haversine_km as haversine_km  # re-exported for the app

# One definition of the projection and of great-circle distances, shared with the engine (torch-free).
lonlat_to_mercator = lonlat_to_web_mercator
mercator_to_lonlat = web_mercator_to_lonlat
MAX_LAT = WEB_MERCATOR_MAX_LAT


def ground_metres_per_mercator_metre(lat: float) -> float:
    """How many metres on the ground one EPSG:3857 metre covers at latitude ``lat``."""
    return math.cos(math.radians(max(-MAX_LAT, min(MAX_LAT, lat))))


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
