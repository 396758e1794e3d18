"""One way to write a place everywhere in the app: latitude first with N/S and E/W (the field's habit),
or longitude first when the user chose that in View > Coordinates. Qt-free."""

from __future__ import annotations

ORDERS = ("latlon", "lonlat")


def format_place(lat: float, lon: float, order: str = "latlon", decimals: int = 4) -> str:
    """'55.6761° N, 12.5683° E' (``order="latlon"``) or '12.5683° E, 55.6761° N' (``"lonlat"``).

    Args:
        lat, lon: WGS84 degrees.
        order: "latlon" or "lonlat" (anything else counts as "latlon").
        decimals: 4 is about 10 m, 5 about 1 m.
    """
    ns = f"{abs(lat):.{decimals}f}° {'N' if lat >= 0 else 'S'}"
    ew = f"{abs(lon):.{decimals}f}° {'E' if lon >= 0 else 'W'}"
    return f"{ew}, {ns}" if order == "lonlat" else f"{ns}, {ew}"
