"""Where the map draws things, computed once per atlas (no Qt): tile boxes in Web Mercator, a grid
per imagery source for drawing per-tile values as one image, and the visible-tile lookup.

Drawing one graphics item per tile does not scale to tens of thousands of tiles, so values over tiles
(the heat map) are rasterised into one small image per source, one pixel per tile cell, and placed
with a single ``ImageItem`` each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.services.geo import lonlat_to_mercator

MAX_GRID_SIDE = 4096  # cells; a sparse source spread wider gets coarser cells (several tiles per cell)


@dataclass(frozen=True)
class SourceGrid:
    """The cells of one imagery source: tile ``tiles[k]`` sits at ``(rows[k], cols[k])``.

    Row 0 is the southernmost (the map's y axis points north). ``rect`` is (x, y, width, height) in
    EPSG:3857 metres.
    """

    source: int
    tiles: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    shape: tuple[int, int]
    rect: tuple[float, float, float, float]


@dataclass(frozen=True)
class TileLayout:
    """Tile centres and boxes in EPSG:3857 and one grid per source."""

    x: np.ndarray
    y: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    grids: list[SourceGrid]

    @property
    def count(self) -> int:
        return int(self.x.size)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in EPSG:3857 metres."""
        if self.count == 0:
            return (-1.0, -1.0, 1.0, 1.0)
        return (float(self.x0.min()), float(self.y0.min()), float(self.x1.max()), float(self.y1.max()))

    def visible(self, west: float, south: float, east: float, north: float) -> np.ndarray:
        """Indices of tiles whose box meets the rectangle."""
        mask = (self.x1 >= west) & (self.x0 <= east) & (self.y1 >= south) & (self.y0 <= north)
        return np.flatnonzero(mask)

    def median_tile_width(self) -> float:
        return float(np.median(self.x1 - self.x0)) if self.count else 1.0

    def rasterise(self, values: np.ndarray, lut: np.ndarray, levels: tuple[float, float],
                  alpha: int = 255) -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
        """Colour ``values`` (one per tile) through ``lut`` into one RGBA image per source grid.

        Args:
            values: (N,) floats; NaN tiles stay transparent.
            lut: (256, 3 or 4) uint8 colour table.
            levels: the values mapped to the first and last colour.
            alpha: opacity of coloured cells.

        Returns:
            [(rgba (h, w, 4) uint8 with row 0 at the south, rect), ...], one per source.
        """
        values = np.asarray(values, dtype=np.float64)
        lo, hi = levels
        span = hi - lo if hi > lo else 1.0
        index = np.clip((values - lo) / span * (len(lut) - 1), 0, len(lut) - 1)
        finite = np.isfinite(index)
        colours = lut[np.where(finite, index, 0).astype(np.intp), :3]
        out = []
        for g in self.grids:
            rgba = np.zeros((*g.shape, 4), np.uint8)
            ok = finite[g.tiles]
            rgba[g.rows[ok], g.cols[ok], :3] = colours[g.tiles[ok]]
            rgba[g.rows[ok], g.cols[ok], 3] = alpha
            out.append((rgba, g.rect))
        return out


def _grid(source: int, tiles: np.ndarray, x: np.ndarray, y: np.ndarray, x0: np.ndarray, x1: np.ndarray,
          y0: np.ndarray, y1: np.ndarray) -> SourceGrid:
    w = float(np.median(x1[tiles] - x0[tiles]))
    h = float(np.median(y1[tiles] - y0[tiles]))
    w, h = (w if w > 0 else 1.0), (h if h > 0 else 1.0)
    west, south = float(x0[tiles].min()), float(y0[tiles].min())
    east, north = float(x1[tiles].max()), float(y1[tiles].max())
    # Cells as large as a tile, or larger when a sparse source would need an enormous image.
    w = max(w, (east - west) / MAX_GRID_SIDE)
    h = max(h, (north - south) / MAX_GRID_SIDE)
    cols = np.floor((x[tiles] - west) / w).astype(np.int64)
    rows = np.floor((y[tiles] - south) / h).astype(np.int64)
    ncols = max(1, int(np.ceil((east - west) / w - 1e-6)), int(cols.max()) + 1)
    nrows = max(1, int(np.ceil((north - south) / h - 1e-6)), int(rows.max()) + 1)
    return SourceGrid(source, tiles, rows, cols, (nrows, ncols), (west, south, ncols * w, nrows * h))


def layout_tiles(tiles: Any) -> TileLayout:
    """Compute the :class:`TileLayout` of an atlas's ``tiles`` (``lon``, ``lat``, ``footprints``, ``source``)."""
    lon = np.asarray(tiles.lon, dtype=np.float64)
    lat = np.asarray(tiles.lat, dtype=np.float64)
    x, y = lonlat_to_mercator(lon, lat)
    fp = np.asarray(tiles.footprints, dtype=np.float64).reshape(len(lon), -1, 2)
    if len(lon):
        fx, fy = lonlat_to_mercator(fp[..., 0], fp[..., 1])
        x0, x1, y0, y1 = fx.min(axis=1), fx.max(axis=1), fy.min(axis=1), fy.max(axis=1)
    else:
        x0 = x1 = y0 = y1 = np.zeros(0)
    source = np.asarray(tiles.source, dtype=np.int64)
    grids = [_grid(int(s), np.flatnonzero(source == s), x, y, x0, x1, y0, y1) for s in np.unique(source)]
    return TileLayout(np.asarray(x), np.asarray(y), x0, x1, y0, y1, grids)
