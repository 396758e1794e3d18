"""Where the map draws things (no Qt): tile footprints in Web Mercator, a grid per imagery source for
drawing per-tile values as one image, and the visible-tile lookup.

What needs the whole atlas is the engine's :class:`~engine.atlas.tile_index.TileIndex` (stored in the atlas
by its build, memory-mapped), so opening an atlas and drawing a view do not depend on its tile count: a
frame computes the corners of the tiles it shows, nothing more. Arrays over every tile (centres, boxes,
heat-map cells) are computed only when asked for (a heat map over all tiles needs its cells).

Drawing one graphics item per tile does not scale to tens of thousands of tiles, so values over tiles
(the heat map) are rasterised into one small image per source, one pixel per tile, placed on the map
by an affine transform fitted to the tiles' (column, row) -> centre mapping. That keeps the cells on
the tiles even when the imagery's own CRS (say UTM) is rotated against Web Mercator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from engine.atlas.tile_index import Affine, TileIndex, compute_tile_index, tile_index_of

__all__ = ["Affine", "SourceGrid", "TileLayout", "layout_atlas", "layout_tiles"]


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


class TileLayout:
    """The tiles as the map places them (EPSG:3857), backed by a :class:`TileIndex`: count, bounds, tile
    width, the tiles in a view and under a point, and one tile's corners, all without touching every tile;
    ``x``, ``y``, ``corners``, ``x0``..``y1`` and ``grids`` over every tile are computed on first use."""

    def __init__(self, tiles: Any, index: TileIndex) -> None:
        self.tiles = tiles
        self.index = index

    @property
    def count(self) -> int:
        return self.index.count

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in EPSG:3857 metres."""
        return self.index.bounds if self.count else (-1.0, -1.0, 1.0, 1.0)

    def median_tile_width(self) -> float:
        return self.index.tile_width if self.count else 1.0

    def visible(self, west: float, south: float, east: float, north: float) -> np.ndarray:
        """Indices (ascending) of tiles whose box meets the rectangle."""
        return self.index.visible(west, south, east, north)

    def at(self, x: float, y: float) -> int | None:
        """The tile drawn at (x, y) (EPSG:3857), the nearest centre where footprints overlap; None if none."""
        return self.index.at(x, y)

    def quad(self, index: int) -> np.ndarray:
        """(4, 2) EPSG:3857 corners of tile ``index``: top-left, top-right, bottom-right, bottom-left."""
        return self.index.quads(np.array([index]))[0]

    def quads(self, indices: np.ndarray) -> np.ndarray:
        """(k, 4, 2) corners of tiles ``indices`` (one vectorised step for all the tiles of a view)."""
        return self.index.quads(np.asarray(indices, dtype=np.int64))

    # ------------------------------------------------------------------- over every tile (O(N))

    @cached_property
    def corners(self) -> np.ndarray:
        """(N, 4, 2) footprint corners of every tile."""
        return self.index.quads(np.arange(self.count))

    @cached_property
    def _centres(self) -> tuple[np.ndarray, np.ndarray]:
        return self.index.centres(np.arange(self.count))

    @property
    def x(self) -> np.ndarray:
        return self._centres[0]

    @property
    def y(self) -> np.ndarray:
        return self._centres[1]

    @property
    def x0(self) -> np.ndarray:
        return self.corners[..., 0].min(axis=1)

    @property
    def x1(self) -> np.ndarray:
        return self.corners[..., 0].max(axis=1)

    @property
    def y0(self) -> np.ndarray:
        return self.corners[..., 1].min(axis=1)

    @property
    def y1(self) -> np.ndarray:
        return self.corners[..., 1].max(axis=1)

    @cached_property
    def grids(self) -> list[SourceGrid]:
        """Each source's heat-map cells (one image per source; O(N) once, then kept)."""
        grid = getattr(self.tiles, "grid", None)
        single = len(self.index.grids) == 1  # every tile is of that source: no per-tile selection
        source = None if single else np.asarray(self.tiles.source).reshape(self.count)
        out = []
        for spec in self.index.grids:
            idx = np.arange(self.count) if source is None else np.flatnonzero(source == spec.source)
            if spec.kind == "cells" and grid is not None:
                cells = np.asarray(grid if source is None else grid[idx])
                cols, rows = (cells[:, 0] - spec.col0) // spec.step, (cells[:, 1] - spec.row0) // spec.step
            else:
                cx, cy = self.index.centres(idx)
                cols = np.floor((cx - spec.west) / spec.cell_w).astype(np.int64)
                rows = spec.shape[0] - 1 - np.floor((cy - spec.south) / spec.cell_h).astype(np.int64)
            inside = (rows >= 0) & (rows < spec.shape[0]) & (cols >= 0) & (cols < spec.shape[1])
            if not inside.all():
                idx, rows, cols = idx[inside], rows[inside], cols[inside]
            out.append(SourceGrid(spec.source, idx, rows, cols, spec.shape, spec.affine))
        return out

    @cached_property
    def _flat_cells(self) -> list[np.ndarray]:
        """Per grid: each tile's cell as one number (row * width + col)."""
        return [g.rows.astype(np.int64) * g.shape[1] + g.cols for g in self.grids]

    def rasterise(self, values: np.ndarray, lut: np.ndarray, levels: tuple[float, float],
                  alpha: int = 255, nan_rgba: tuple[int, int, int, int] | None = None
                  ) -> list[tuple[np.ndarray, Affine]]:
        """Colour ``values`` (one per tile) through ``lut`` into one RGBA image per source grid.

        Args:
            values: (N,) floats; NaN tiles stay transparent, or take ``nan_rgba`` ("no value"). Where several
                tiles share a cell (a source wider than the largest image), the cell shows the first of them
                (in a grid, the top-left one; from tile boxes, the first with a value).
            lut: (256, 3 or 4) uint8 colour table.
            levels: the values mapped to the first and last colour.
            alpha: opacity of coloured cells.

        Returns:
            [(rgba (h, w, 4) uint8, affine), ...], one per source.
        """
        codes, cell, n, any_missing = self._codes(values, lut, levels, alpha, nan_rgba)
        out = []
        for k, spec in enumerate(self.index.grids):
            h, w = spec.shape
            if spec.dense_start is not None:  # the tiles in row order: no per-tile cells to read
                count, cols = spec.dense_count, spec.tile_cols
                rows = -(-count // cols)
                full = np.full(rows * cols, n + 1, np.uint16)  # past the last tile: no tile, transparent
                full[:count] = codes[spec.dense_start:spec.dense_start + count]
                picked = full.reshape(rows, cols)[::spec.step, ::spec.step]  # a cell of step x step: its top-left
                words = np.ascontiguousarray(cell[picked]).ravel()
            else:
                words = _scatter(self.grids[k], self._flat_cells[k], codes, cell, n, any_missing)
            rgba = words.view(np.uint8).reshape(h, w, 4)
            out.append((rgba, spec.affine))
        return out

    def _codes(self, values: np.ndarray, lut: np.ndarray, levels: tuple[float, float], alpha: int,
               nan_rgba: tuple[int, int, int, int] | None) -> tuple[np.ndarray, np.ndarray, int, bool]:
        """Each tile's colour number (n: no value), the colours as 32-bit RGBA words, n, and whether any
        tile has no value."""
        lo, hi = levels
        span = hi - lo if hi > lo else 1.0
        n = len(lut)
        # float32 and in place: one pass per step over ten million tiles (a colour index needs no more)
        codes = np.subtract(np.asarray(values), np.float32(lo), dtype=np.float32)
        codes *= np.float32((n - 1) / span)
        np.clip(codes, 0, n - 1, out=codes)
        missing = np.isnan(codes)
        codes[missing] = n  # one more colour: "no value"
        table = np.zeros((n + 2, 4), np.uint8)  # one gather gives the whole RGBA of a cell; n + 1: no tile
        table[:n, :3], table[:n, 3] = lut[:, :3], alpha
        if nan_rgba is not None:
            table[n] = nan_rgba
        # a cell's RGBA as one 32-bit word: a gather 5x faster than rows
        return codes.astype(np.uint16), table.view(np.uint32).ravel(), n, bool(missing.any())

    @cached_property
    def atlas_grid(self) -> SourceGrid | None:
        """One grid over the whole atlas (cells about a tile, at most ATLAS_GRID_SIDE a side) for the heat map
        of an atlas of many sources seen from afar: one picture instead of one per source. None with one
        source (its own grid is already the whole atlas)."""
        if len(self.index.grids) <= 1 or self.count == 0:
            return None
        west, south, east, north = self.bounds
        sample = self.index.quads(np.unique(np.linspace(0, self.count - 1, min(self.count, 4096)).astype(np.int64)))
        tile_h = float(np.median(sample[..., 1].max(axis=1) - sample[..., 1].min(axis=1))) or 1.0
        cell_w = max(self.index.tile_width, (east - west) / ATLAS_GRID_SIDE)  # about a tile, unless too many
        cell_h = max(tile_h, (north - south) / ATLAS_GRID_SIDE)
        ncols = max(1, int(np.ceil((east - west) / cell_w)))
        nrows = max(1, int(np.ceil((north - south) / cell_h)))
        cols, rows = np.empty(self.count, np.int32), np.empty(self.count, np.int32)
        for a in range(0, self.count, 1 << 20):
            cx, cy = self.index.centres(np.arange(a, min(a + (1 << 20), self.count)))
            cols[a:a + cx.size] = np.clip(np.floor((cx - west) / cell_w), 0, ncols - 1)
            rows[a:a + cx.size] = np.clip(np.floor((north - cy) / cell_h), 0, nrows - 1)
        return SourceGrid(-1, np.arange(self.count), rows, cols, (nrows, ncols),
                          (cell_w, 0.0, west, 0.0, -cell_h, north))

    def rasterise_atlas(self, values: np.ndarray, lut: np.ndarray, levels: tuple[float, float], alpha: int = 255,
                        nan_rgba: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, Affine] | None:
        """:meth:`rasterise` onto :attr:`atlas_grid` (one image for the whole atlas), or None with one source."""
        g = self.atlas_grid
        if g is None:
            return None
        codes, cell, n, any_missing = self._codes(values, lut, levels, alpha, nan_rgba)
        flat = g.rows.astype(np.int64) * g.shape[1] + g.cols
        words = _scatter(g, flat, codes, cell, n, any_missing)
        return words.view(np.uint8).reshape(*g.shape, 4), g.affine


ATLAS_GRID_SIDE = 2048


def _scatter(g: SourceGrid, flat: np.ndarray, codes: np.ndarray, cell: np.ndarray, n: int,
             any_missing: bool) -> np.ndarray:
    """Cells of grid ``g`` as 32-bit RGBA words from the tiles' colour numbers. Written last to first, so where
    tiles share a cell the first one's value stays (a coarse cell shows its top-left tile, as the reshape of
    :meth:`TileLayout.rasterise` does); tiles without a value go first, so a shared cell shows a value."""
    h, w = g.shape
    words = np.zeros(h * w, np.uint32)
    tile_codes, flat = codes[g.tiles][::-1], flat[::-1]
    if any_missing:
        gap = tile_codes == n
        words[flat[gap]] = cell[n]
        words[flat[~gap]] = cell[tile_codes[~gap]]
    else:
        words[flat] = cell[tile_codes]
    return words


def layout_tiles(tiles: Any) -> TileLayout:
    """The :class:`TileLayout` of ``tiles`` (``lon``, ``lat``, ``footprints``, ``source``, and ``grid``
    (col, row) when there is one), its index computed in memory: for small sets of tiles and tests."""
    return TileLayout(tiles, compute_tile_index(tiles))


def layout_atlas(atlas: Any) -> TileLayout:
    """The :class:`TileLayout` of an opened atlas, on the index its build stored (memory-mapped; computed in
    memory for an atlas without one). The same index answers the engine's point lookups."""
    return TileLayout(atlas.tiles, tile_index_of(atlas))
