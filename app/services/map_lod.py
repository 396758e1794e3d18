"""Levels of detail for the map's heat layer and imagery overviews (no Qt): what a frame draws should depend on the view, not
on how many tiles the atlas has.

:class:`HeatPyramid`: each source's heat raster (one pixel per tile) with coarser levels (2 x 2 cells
averaged, transparent cells ignored), so a zoomed-out frame draws a small image, never the full one. (The
tiles in view and under the cursor come from the atlas's tile index, ``engine.atlas.tile_index``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.services.map_layout import Affine


def _halve(rgba: np.ndarray) -> np.ndarray:
    """2 x 2 average of an RGBA image, weighting colours by alpha (transparent cells do not darken).

    Integer sums over strided quarters, one channel at a time, rounded half up: four times faster than a
    floating-point block reduction over the ten million cells of a continental heat map."""
    h, w = rgba.shape[:2]
    if h % 2 or w % 2:
        padded = np.zeros(((h + 1) // 2 * 2, (w + 1) // 2 * 2, 4), np.uint8)
        padded[:h, :w] = rgba
        rgba = padded
    a = rgba[..., 3].astype(np.uint16)
    alpha = a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]  # at most 1020
    out = np.empty((*alpha.shape, 4), np.uint8)
    safe = np.maximum(alpha, 1).astype(np.uint32)
    for ch in range(3):
        c = rgba[..., ch].astype(np.uint32) * a  # colour times alpha: at most 65025, four of them fit
        total = c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]
        out[..., ch] = (total + safe // 2) // safe
    out[..., 3] = (alpha + 2) // 4
    return out


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

    def choose(self, mercator_per_pixel: float, max_cell_px: float = 2.0) -> int:
        """The coarsest level whose cells are still at most ``max_cell_px`` screen pixels wide (finer adds
        nothing; a heat map's cells may be 2 px, imagery looks best at 1)."""
        best = 0
        for i, level in enumerate(self.levels):
            if level.cell <= max_cell_px * mercator_per_pixel:
                best = i
        return best
