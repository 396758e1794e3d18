"""Levels of detail for the map (no Qt): what a frame draws should depend on the view, not on how many
tiles the atlas has.

- :class:`TileBuckets`: the tiles' boxes bucketed on a regular grid (EPSG:3857 metres), so the tiles in
  view, or under the cursor, are found by looking only at the buckets the view touches.
- :class:`HeatPyramid`: each source's heat raster (one pixel per tile) with coarser levels (2 x 2 cells
  averaged, transparent cells ignored), so a zoomed-out frame draws a small image, never the full one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.services.map_layout import Affine, TileLayout

TILES_PER_BUCKET_SIDE = 4  # a bucket is about 4 x 4 tiles
MAX_BUCKETS = 1 << 22


class TileBuckets:
    """Tiles by bucket of their box's south-west corner; a query widens its rectangle by the largest
    tile so a tile is found from any bucket its box reaches."""

    def __init__(self, layout: TileLayout) -> None:
        self.layout = layout
        n = layout.count
        self.tile_width = layout.median_tile_width()  # computed once (a median over millions is not free)
        if n == 0:
            self.size, self.cols, self.rows = 1.0, 1, 1
            self.west = self.south = 0.0
            self.order = np.zeros(0, np.int64)
            self.starts = np.zeros(2, np.int64)
            self.pad_x = self.pad_y = 0.0
            return
        west, south, east, north = layout.bounds
        side = TILES_PER_BUCKET_SIDE * max(self.tile_width, 1e-9)
        side = max(side, np.sqrt((east - west) * (north - south) / MAX_BUCKETS))  # bound the bucket count
        self.size, self.west, self.south = float(side), float(west), float(south)
        self.cols = int((east - west) // side) + 1
        self.rows = int((north - south) // side) + 1
        bucket = self._bucket(layout.x0, layout.y0)
        self.order = np.argsort(bucket, kind="stable")
        self.starts = np.searchsorted(bucket[self.order], np.arange(self.cols * self.rows + 1))
        self.pad_x = float((layout.x1 - layout.x0).max())
        self.pad_y = float((layout.y1 - layout.y0).max())

    def _bucket(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        c = np.clip(((np.asarray(x) - self.west) // self.size).astype(np.int64), 0, self.cols - 1)
        r = np.clip(((np.asarray(y) - self.south) // self.size).astype(np.int64), 0, self.rows - 1)
        return r * self.cols + c

    def visible(self, west: float, south: float, east: float, north: float) -> np.ndarray:
        """Indices (ascending) of tiles whose box meets the rectangle: the same as ``TileLayout.visible``."""
        lay = self.layout
        if lay.count == 0 or east < west or north < south:
            return np.zeros(0, np.int64)
        c0, c1 = (int(np.clip((v - self.west) // self.size, 0, self.cols - 1)) for v in (west - self.pad_x, east))
        r0, r1 = (int(np.clip((v - self.south) // self.size, 0, self.rows - 1)) for v in (south - self.pad_y, north))
        if (c1 - c0 + 1) * (r1 - r0 + 1) * 4 > self.cols * self.rows:  # most of the atlas is in view anyway
            return lay.visible(west, south, east, north)
        spans = [(self.starts[r * self.cols + c0], self.starts[r * self.cols + c1 + 1]) for r in range(r0, r1 + 1)]
        cand = np.concatenate([self.order[a:b] for a, b in spans]) if spans else np.zeros(0, np.int64)
        keep = (lay.x1[cand] >= west) & (lay.x0[cand] <= east) & (lay.y1[cand] >= south) & (lay.y0[cand] <= north)
        return np.sort(cand[keep])

    def at(self, x: float, y: float) -> int | None:
        """The tile whose footprint contains the point (EPSG:3857), the nearest centre where they overlap."""
        cand = self.visible(x, y, x, y)
        if cand.size == 0:
            return None
        quads = self.layout.corners[cand]
        edges = np.roll(quads, -1, axis=1) - quads
        rel = np.array([x, y]) - quads
        cross = edges[:, :, 0] * rel[:, :, 1] - edges[:, :, 1] * rel[:, :, 0]
        hits = cand[(cross >= 0).all(axis=1) | (cross <= 0).all(axis=1)]
        if hits.size == 0:
            return None
        d = (self.layout.x[hits] - x) ** 2 + (self.layout.y[hits] - y) ** 2
        return int(hits[np.argmin(d)])


def _halve(rgba: np.ndarray) -> np.ndarray:
    """2 x 2 average of an RGBA image, weighting colours by alpha (transparent cells do not darken)."""
    h, w = rgba.shape[:2]
    padded = np.zeros(((h + 1) // 2 * 2, (w + 1) // 2 * 2, 4), np.float32)
    padded[:h, :w] = rgba
    a = padded[..., 3:4]
    blocks = lambda v: v.reshape(v.shape[0] // 2, 2, v.shape[1] // 2, 2, -1).sum(axis=(1, 3))  # noqa: E731
    alpha = blocks(a)
    colour = blocks(padded[..., :3] * a) / np.maximum(alpha, 1e-6)
    out = np.concatenate([colour, alpha / 4], axis=2)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class HeatLevel:
    rgba: np.ndarray
    affine: Affine
    cell: float  # EPSG:3857 metres per cell (the larger of its two sides)


class HeatPyramid:
    """One source's heat raster and its coarser levels, down to about 64 cells a side."""

    def __init__(self, rgba: np.ndarray, affine: Affine, smallest: int = 64) -> None:
        a, b, c, d, e, f = affine
        cell = float(max(np.hypot(a, d), np.hypot(b, e)))
        self.levels = [HeatLevel(rgba, affine, cell)]
        scale = 1
        while max(self.levels[-1].rgba.shape[:2]) > smallest:
            scale *= 2
            self.levels.append(HeatLevel(_halve(self.levels[-1].rgba),
                                         (a * scale, b * scale, c, d * scale, e * scale, f), cell * scale))

    def choose(self, mercator_per_pixel: float) -> int:
        """The coarsest level whose cells are still at most two screen pixels wide (finer adds nothing)."""
        best = 0
        for i, level in enumerate(self.levels):
            if level.cell <= 2 * mercator_per_pixel:
                best = i
        return best
