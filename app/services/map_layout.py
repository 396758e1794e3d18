"""Where the map draws things, computed once per atlas (no Qt): tile footprints in Web Mercator, a
grid per imagery source for drawing per-tile values as one image, and the visible-tile lookup.

Drawing one graphics item per tile does not scale to tens of thousands of tiles, so values over tiles
(the heat map) are rasterised into one small image per source, one pixel per tile, placed on the map
by an affine transform fitted to the tiles' (column, row) -> centre mapping. That keeps the cells on
the tiles even when the imagery's own CRS (say UTM) is rotated against Web Mercator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.services.geo import lonlat_to_mercator
from engine.geo import contiguous_lon, unwrap_lon, wrap_lon

MAX_GRID_SIDE = 4096  # cells; a sparse source spread wider gets coarser cells (several tiles per cell)

# (a, b, c, d, e, f): x = a*col + b*row + c, y = d*col + e*row + f, for pixel-corner coordinates.
Affine = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class SourceGrid:
    """The cells of one imagery source: tile ``tiles[k]`` is pixel ``(rows[k], cols[k])`` of an image
    of ``shape`` that ``affine`` places on the map (EPSG:3857 metres)."""

    source: int
    tiles: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    shape: tuple[int, int]
    affine: Affine

    def cell_centre(self, row: float, col: float) -> tuple[float, float]:
        a, b, c, d, e, f = self.affine
        return a * (col + 0.5) + b * (row + 0.5) + c, d * (col + 0.5) + e * (row + 0.5) + f


@dataclass(frozen=True)
class TileLayout:
    """Tile centres, footprints and boxes in EPSG:3857, and one grid per source."""

    x: np.ndarray
    y: np.ndarray
    corners: np.ndarray  # (N, 4, 2) footprint corners: top-left, top-right, bottom-right, bottom-left
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
                  alpha: int = 255, nan_rgba: tuple[int, int, int, int] | None = None
                  ) -> list[tuple[np.ndarray, Affine]]:
        """Colour ``values`` (one per tile) through ``lut`` into one RGBA image per source grid.

        Args:
            values: (N,) floats; NaN tiles stay transparent, or take ``nan_rgba`` ("no value").
            lut: (256, 3 or 4) uint8 colour table.
            levels: the values mapped to the first and last colour.
            alpha: opacity of coloured cells.

        Returns:
            [(rgba (h, w, 4) uint8, affine), ...], one per source.
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
            if nan_rgba is not None:
                rgba[g.rows[~ok], g.cols[~ok]] = nan_rgba
            out.append((rgba, g.affine))
        return out


def _fit_affine(cols: np.ndarray, rows: np.ndarray, x: np.ndarray, y: np.ndarray) -> Affine | None:
    """Least-squares affine from cell centres (col + 0.5, row + 0.5) to (x, y); None if degenerate."""
    if cols.size < 3 or np.unique(cols).size < 2 or np.unique(rows).size < 2:
        return None
    design = np.column_stack([cols + 0.5, rows + 0.5, np.ones(cols.size)])
    (a, b, c), *_ = np.linalg.lstsq(design, x, rcond=None)
    (d, e, f), *_ = np.linalg.lstsq(design, y, rcond=None)
    if abs(a * e - b * d) < 1e-9:
        return None
    return float(a), float(b), float(c), float(d), float(e), float(f)


def _grid_from_cells(source: int, tiles: np.ndarray, cols: np.ndarray, rows: np.ndarray, x: np.ndarray,
                     y: np.ndarray) -> SourceGrid | None:
    c0, r0 = int(cols.min()), int(rows.min())
    cols, rows = cols - c0, rows - r0
    if cols.max() >= MAX_GRID_SIDE or rows.max() >= MAX_GRID_SIDE:
        return None
    affine = _fit_affine(cols, rows, x, y)
    if affine is None:
        return None
    return SourceGrid(source, tiles, rows, cols, (int(rows.max()) + 1, int(cols.max()) + 1), affine)


def _grid_from_boxes(source: int, tiles: np.ndarray, x: np.ndarray, y: np.ndarray, x0: np.ndarray,
                     x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> SourceGrid:
    """Cells from tile centres and box sizes, for sources without a usable (col, row) grid."""
    w = float(np.median(x1 - x0)) or 1.0
    h = float(np.median(y1 - y0)) or 1.0
    west, south = float(x0.min()), float(y0.min())
    east, north = float(x1.max()), float(y1.max())
    w = max(w, (east - west) / MAX_GRID_SIDE)  # several tiles share a cell rather than a huge image
    h = max(h, (north - south) / MAX_GRID_SIDE)
    cols = np.floor((x - west) / w).astype(np.int64)
    rows_up = np.floor((y - south) / h).astype(np.int64)
    nrows = int(rows_up.max()) + 1
    rows = nrows - 1 - rows_up  # row 0 at the north, like an image
    ncols = int(cols.max()) + 1
    affine = (w, 0.0, west, 0.0, -h, south + nrows * h)
    return SourceGrid(source, tiles, rows, cols, (nrows, ncols), affine)


def _contiguous_sources(lon: np.ndarray, fp: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tile longitudes (centres in [-180, 180)) placed so each source's tiles lie side by side, its west
    edge in [-180, 180): the rule the engine places a source's overview by. A source across the
    antimeridian is then drawn in one piece just east of 180 (its overview, heat map and tiles together),
    not split across the map's two edges."""
    if lon.size == 0:
        return lon, fp
    lon, fp = lon.copy(), fp.copy()
    for s in np.unique(source):
        idx = np.flatnonzero(source == s)
        centres = contiguous_lon(lon[idx])
        corners = unwrap_lon(fp[idx, :, 0], centres[:, None])
        west = corners.min()
        shift = float(wrap_lon(west) - west)
        lon[idx], fp[idx, :, 0] = centres + shift, corners + shift
    return lon, fp


def layout_tiles(tiles: Any) -> TileLayout:
    """Compute the :class:`TileLayout` of an atlas's ``tiles`` (``lon``, ``lat``, ``footprints``,
    ``source``, and ``grid`` (col, row) when the atlas has it)."""
    lon = np.asarray(tiles.lon, dtype=np.float64)
    lat = np.asarray(tiles.lat, dtype=np.float64)
    fp = np.asarray(tiles.footprints, dtype=np.float64).reshape(len(lon), 4, 2)
    source = np.asarray(tiles.source, dtype=np.int64)
    lon, fp = _contiguous_sources(lon, fp, source)
    x, y = lonlat_to_mercator(lon, lat)
    x, y = np.atleast_1d(x), np.atleast_1d(y)
    fx, fy = lonlat_to_mercator(fp[..., 0], fp[..., 1])
    corners = np.stack([fx, fy], axis=-1).reshape(len(lon), 4, 2)
    if len(lon):
        x0, x1, y0, y1 = fx.min(axis=1), fx.max(axis=1), fy.min(axis=1), fy.max(axis=1)
    else:
        x0 = x1 = y0 = y1 = np.zeros(0)
    grid = getattr(tiles, "grid", None)
    cells = np.asarray(grid, dtype=np.int64) if grid is not None and len(grid) == len(lon) else None
    grids = []
    for s in np.unique(source):
        idx = np.flatnonzero(source == s)
        g = None
        if cells is not None:
            g = _grid_from_cells(int(s), idx, cells[idx, 0], cells[idx, 1], x[idx], y[idx])
        if g is None:
            g = _grid_from_boxes(int(s), idx, x[idx], y[idx], x0[idx], x1[idx], y0[idx], y1[idx])
        grids.append(g)
    return TileLayout(x, y, corners, x0, x1, y0, y1, grids)
