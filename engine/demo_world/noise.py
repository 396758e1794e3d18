"""Seeded, seamless procedural noise evaluated on any window of the world.

Every value is a pure function of (seed, world coordinates), so tiles rendered in different
processes meet without seams and the same seed always gives the same world. Grids are given as
the x coordinates of the columns and the y coordinates of the rows (metres), which lets lattice
values be gathered with outer indexing instead of hashing every pixel.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_KX = np.uint64(0x9E3779B97F4A7C15)
_KY = np.uint64(0xC2B2AE3D27D4EB4F)
_KS = np.uint64(0x165667B19E3779F9)


def hash_uniform(seed: int, *keys: np.ndarray | int) -> np.ndarray:
    """Uniform [0, 1) values from integer keys (splitmix64 finaliser); broadcasts like numpy."""
    with np.errstate(over="ignore"):  # wrapping 64-bit arithmetic is the point of the hash
        return _hash(seed, keys)


def _hash(seed: int, keys: tuple[np.ndarray | int, ...]) -> np.ndarray:
    h = np.full(np.broadcast_shapes(*(np.shape(k) for k in keys)), np.uint64(seed & 0xFFFFFFFF) * _KS,
                dtype=np.uint64)
    for i, key in enumerate(keys):
        k = np.asarray(key, dtype=np.int64).view(np.uint64) if np.ndim(key) else np.uint64(int(key) & (2**64 - 1))
        h = h ^ ((k + np.uint64(i + 1)) * (_KX if i % 2 == 0 else _KY))
        h = (h ^ (h >> np.uint64(30))) * _M1
        h = (h ^ (h >> np.uint64(27))) * _M2
        h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def _axis(coords: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray, int, int]:
    g = np.asarray(coords, dtype=np.float64) / cell
    i0 = np.floor(g).astype(np.int64)
    lo = int(i0.min()) if i0.size else 0
    hi = int(i0.max()) + 2 if i0.size else 1
    return i0 - lo, _fade(g - i0), lo, hi


def value_noise(xs: np.ndarray, ys: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1] with features of about ``cell`` metres, shape (len(ys), len(xs))."""
    ix, fx, x_lo, x_hi = _axis(xs, cell)
    iy, fy, y_lo, y_hi = _axis(ys, cell)
    lattice = hash_uniform(seed, np.arange(y_lo, y_hi)[:, None], np.arange(x_lo, x_hi)[None, :])
    top = lattice[iy][:, ix] * (1 - fx) + lattice[iy][:, ix + 1] * fx
    bottom = lattice[iy + 1][:, ix] * (1 - fx) + lattice[iy + 1][:, ix + 1] * fx
    return (top * (1 - fy)[:, None] + bottom * fy[:, None]).astype(np.float32)


def fbm(xs: np.ndarray, ys: np.ndarray, cell: float, seed: int, octaves: int = 4,
        persistence: float = 0.5) -> np.ndarray:
    """Fractal sum of value noise (cells halve, amplitudes scale by ``persistence``), about [0, 1]."""
    total = np.zeros((len(ys), len(xs)), np.float32)
    amp, norm = 1.0, 0.0
    for octave in range(octaves):
        total += np.float32(amp) * value_noise(xs, ys, cell / 2**octave, seed * 131 + octave)
        norm += amp
        amp *= persistence
    return total / np.float32(norm)


def noise_1d(t: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth 1-D value noise in [0, 1] of any-shaped coordinates ``t`` (metres)."""
    g = np.asarray(t, dtype=np.float64) / cell
    i0 = np.floor(g).astype(np.int64)
    f = _fade(g - i0)
    return hash_uniform(seed, i0) * (1 - f) + hash_uniform(seed, i0 + 1) * f


def fbm_1d(t: np.ndarray, cell: float, seed: int, octaves: int = 3) -> np.ndarray:
    total, amp, norm = 0.0, 1.0, 0.0
    for octave in range(octaves):
        total = total + amp * noise_1d(t, cell / 2**octave, seed * 131 + octave)
        norm += amp
        amp *= 0.5
    return total / norm


def worley(xs: np.ndarray, ys: np.ndarray, cell: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cellular noise: one jittered feature point per cell (e.g. a tree crown).

    Returns:
        (distance in metres to the nearest feature point, a uniform [0, 1) id of that point).
    """
    ix, _, x_lo, x_hi = _axis(xs, cell)
    iy, _, y_lo, y_hi = _axis(ys, cell)
    gx = np.arange(x_lo - 1, x_hi + 1)
    gy = np.arange(y_lo - 1, y_hi + 1)
    jx = (gx[None, :] + hash_uniform(seed, gy[:, None], gx[None, :])) * cell
    jy = (gy[:, None] + hash_uniform(seed + 7, gy[:, None], gx[None, :])) * cell
    ident = hash_uniform(seed + 13, gy[:, None], gx[None, :])
    x = np.asarray(xs, dtype=np.float64)[None, :]
    y = np.asarray(ys, dtype=np.float64)[:, None]
    best = np.full((len(ys), len(xs)), np.inf)
    best_id = np.zeros((len(ys), len(xs)))
    for dy in (0, 1, 2):
        rows = iy + dy
        for dx in (0, 1, 2):
            cols = ix + dx
            d2 = (jx[rows][:, cols] - x) ** 2 + (jy[rows][:, cols] - y) ** 2
            closer = d2 < best
            best = np.where(closer, d2, best)
            best_id = np.where(closer, ident[rows][:, cols], best_id)
    return np.sqrt(best).astype(np.float32), best_id.astype(np.float32)
