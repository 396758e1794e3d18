"""Where the recordings are made, and which split each belongs to.

The region is cut into square blocks; each block is train, val or test (70/15/15 of the blocks,
drawn from the seed). Points are not placed within half an image of a border between blocks of
different splits, so no test image overlaps a training image.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt, uniform_filter

from engine.demo_world.config import CLASS_NAMES, SPLIT_PROPORTIONS, WorldSize

# Relative chance that a recording is made in each land-cover class (people record in towns and
# woods more than on open water; sea points are within 250 m of the shore, as from a pier or boat).
CLASS_WEIGHTS = {"sea": 0.4, "beach": 0.8, "freshwater": 0.8, "forest": 1.4, "farmland": 1.4, "meadow": 1.0,
                 "wetland": 0.9, "urban": 1.4, "road": 0.6}
SEA_REACH_M = 250.0
# Within a class, places where several classes meet are favoured (weight 0.25 + 1 - the largest share
# of one class in the image footprint): recordists seek out edges, and mixed places make the pairing
# less ambiguous than a gallery of identical pure-forest squares.
EDGE_PREFERENCE = 0.25


def block_splits(seed: int, size: WorldSize) -> np.ndarray:
    """(n, n) array of split indices (0 train, 1 val, 2 test) for the blocks of the region."""
    n = int(round(size.extent_m / size.block_m))
    total = n * n
    counts = [max(1, int(round(p * total))) for p in SPLIT_PROPORTIONS[1:]]
    labels = np.zeros(total, np.int8)
    labels[total - sum(counts):total - counts[1]] = 1
    labels[total - counts[1]:] = 2
    rng = np.random.default_rng([seed, 0x5B17])
    return rng.permutation(labels).reshape(n, n)


def border_distance(x: np.ndarray, y: np.ndarray, splits: np.ndarray, block_m: float) -> np.ndarray:
    """Metres from each point to the nearest edge of its block shared with a block of another split."""
    n = splits.shape[0]
    bi = np.clip((y // block_m).astype(int), 0, n - 1)
    bj = np.clip((x // block_m).astype(int), 0, n - 1)
    own = splits[bi, bj]
    fx, fy = x - bj * block_m, y - bi * block_m
    dist = np.full(x.shape, np.inf)
    # Side neighbours (distance to the shared edge) and corner neighbours (distance to the corner).
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
        ni, nj = bi + di, bj + dj
        inside = (ni >= 0) & (ni < n) & (nj >= 0) & (nj < n)
        other = np.zeros(x.shape, bool)
        other[inside] = splits[ni[inside], nj[inside]] != own[inside]
        ex = fx if dj == -1 else block_m - fx if dj == 1 else np.zeros_like(fx)
        ey = fy if di == -1 else block_m - fy if di == 1 else np.zeros_like(fy)
        dist = np.where(other, np.minimum(dist, np.hypot(ex, ey)), dist)
    return dist


def sample_points(seed: int, size: WorldSize, classes: np.ndarray, cell_m: float,
                  splits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recording points, snapped to pixel corners so each image is centred on its point.

    Args:
        classes: (H, W) land-class map on a grid of ``cell_m`` cells (a subsample of the raster).
    Returns:
        x, y in metres from the north-west corner (east, south), ``size.recordings`` of each.
    """
    rng = np.random.default_rng([seed, 0x9071])
    h, w = classes.shape
    cy, cx = (np.mgrid[0:h, 0:w] + 0.5) * cell_m
    half = size.image_m / 2 + 2 * size.pixel_m
    ok = (cx > half) & (cx < size.extent_m - half) & (cy > half) & (cy < size.extent_m - half)
    ok &= border_distance(cx, cy, splits, size.block_m) > size.image_m / 2 + cell_m
    sea = CLASS_NAMES.index("sea")
    shore_m = distance_transform_edt(classes == sea) * cell_m
    ok &= (classes != sea) | (shore_m <= SEA_REACH_M)
    # Each split gets its share of the points (70/15/15), drawn within its own blocks.
    n = splits.shape[0]
    split_of = splits[np.clip((cy // size.block_m).astype(int), 0, n - 1), np.clip((cx // size.block_m).astype(int), 0, n - 1)]
    counts = [int(round(p * size.recordings)) for p in SPLIT_PROPORTIONS[1:]]
    counts = [size.recordings - sum(counts), *counts]
    footprint = max(1, int(round(size.image_m / cell_m)))
    largest = np.max([uniform_filter((classes == c).astype(np.float32), footprint, mode="nearest")
                      for c in range(len(CLASS_NAMES))], axis=0)
    appeal = (EDGE_PREFERENCE + 1.0 - largest).ravel()
    xs, ys = [], []
    for split, count in enumerate(counts):
        here = (ok & (split_of == split)).ravel()
        flat = classes.ravel()
        p = np.zeros(flat.size)
        for c in range(len(CLASS_NAMES)):
            cells = here & (flat == c)
            if cells.any():
                p[cells] = CLASS_WEIGHTS[CLASS_NAMES[c]] * appeal[cells] / appeal[cells].sum()
        pick = rng.choice(flat.size, size=count, p=p / p.sum())
        xs.append(cx.ravel()[pick] + rng.uniform(-0.5, 0.5, count) * cell_m)
        ys.append(cy.ravel()[pick] + rng.uniform(-0.5, 0.5, count) * cell_m)
    order = rng.permutation(size.recordings)  # ids in random order, not grouped by split or class
    x, y = np.concatenate(xs)[order], np.concatenate(ys)[order]
    snap = size.pixel_m
    return np.round(x / snap) * snap, np.round(y / snap) * snap
