"""Polylines for rivers and roads: seeded meandering paths and windowed distance fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Polyline:
    """A path in world metres (x east, y south from the north-west corner) with a width per vertex."""

    points: np.ndarray  # (N, 2)
    widths: np.ndarray  # (N,) metres

    @property
    def cumulative_length(self) -> np.ndarray:
        seg = np.hypot(*np.diff(self.points, axis=0).T)
        return np.concatenate([[0.0], np.cumsum(seg)])

    @property
    def max_width(self) -> float:
        return float(self.widths.max())


def meander(rng: np.random.Generator, start: np.ndarray, end: np.ndarray, roughness: float,
            depth: int = 6, smoothing: int = 3) -> np.ndarray:
    """A wandering path from ``start`` to ``end``: midpoint displacement, then Chaikin smoothing.

    ``roughness`` is the sideways displacement of each midpoint as a fraction of its segment length.
    """
    pts = [np.asarray(start, float), np.asarray(end, float)]
    for _ in range(depth):
        out = [pts[0]]
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            d = b - a
            normal = np.array([-d[1], d[0]])
            mid = (a + b) / 2 + normal * rng.normal(0.0, roughness)
            out += [mid, b]
        pts = out
    path = np.array(pts)
    for _ in range(smoothing):
        q = 0.75 * path[:-1] + 0.25 * path[1:]
        r = 0.25 * path[:-1] + 0.75 * path[1:]
        path = np.concatenate([path[:1], np.stack([q, r], axis=1).reshape(-1, 2), path[-1:]])
    return path


@dataclass
class PolylineField:
    """Distance from each pixel of a window to a polyline's centre line, with where along it."""

    distance: np.ndarray   # metres to the centre line (inf beyond the margin)
    half_width: np.ndarray  # half the path's width at the nearest point
    along: np.ndarray      # arc length (m) of the nearest point
    side: np.ndarray       # +1 / -1: which side of the centre line


def polyline_field(xs: np.ndarray, ys: np.ndarray, line: Polyline, margin: float) -> PolylineField:
    """Distances to ``line`` for the grid (ys rows, xs columns), computed only within ``margin`` metres
    of each segment (pixels farther away get ``inf``), so the cost follows the path, not the window."""
    h, w = len(ys), len(xs)
    dist2 = np.full((h, w), np.inf)
    half = np.zeros((h, w), np.float32)
    along = np.zeros((h, w), np.float32)
    side = np.ones((h, w), np.int8)
    p, q = line.points[:-1], line.points[1:]
    cum = line.cumulative_length
    lo = np.minimum(p, q) - margin
    hi = np.maximum(p, q) + margin
    near = ((hi[:, 0] >= xs[0]) & (lo[:, 0] <= xs[-1]) & (hi[:, 1] >= ys[0]) & (lo[:, 1] <= ys[-1]))
    for k in np.flatnonzero(near):
        c0, c1 = np.searchsorted(xs, lo[k, 0]), np.searchsorted(xs, hi[k, 0], side="right")
        r0, r1 = np.searchsorted(ys, lo[k, 1]), np.searchsorted(ys, hi[k, 1], side="right")
        if c0 >= c1 or r0 >= r1:
            continue
        X = xs[c0:c1][None, :] - p[k, 0]
        Y = ys[r0:r1][:, None] - p[k, 1]
        d = q[k] - p[k]
        length2 = float(d @ d) or 1e-9
        t = np.clip((X * d[0] + Y * d[1]) / length2, 0.0, 1.0)
        ex, ey = X - t * d[0], Y - t * d[1]
        d2 = ex * ex + ey * ey
        window = dist2[r0:r1, c0:c1]
        better = d2 < window
        if not better.any():
            continue
        window[better] = d2[better]
        hw = 0.5 * (line.widths[k] + t * (line.widths[k + 1] - line.widths[k]))
        half[r0:r1, c0:c1][better] = hw[better]
        along[r0:r1, c0:c1][better] = (cum[k] + t * np.sqrt(length2))[better]
        side[r0:r1, c0:c1][better] = np.where(X * d[1] - Y * d[0] >= 0, 1, -1)[better]
    return PolylineField(np.sqrt(dist2).astype(np.float32), half, along, side)
