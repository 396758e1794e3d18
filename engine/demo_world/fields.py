"""Farmland: parcels in strips whose orientation changes from one farm zone to the next, each with
its crop (or pasture), sown rows, and tracks or hedges along its edges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.demo_world.layout import FarmZone
from engine.demo_world.noise import hash_uniform

# Parcel kinds and their shares of parcels. "pasture" is meadow; "worked" is being ploughed now.
CROPS = ("pasture", "wheat", "green_cereal", "maize", "rapeseed", "ploughed", "stubble", "worked")
CROP_SHARES = (0.24, 0.17, 0.14, 0.10, 0.08, 0.10, 0.08, 0.09)
CROP = {name: i for i, name in enumerate(CROPS)}


@dataclass
class ParcelWindow:
    crop: np.ndarray     # int8 index into CROPS
    parcel: np.ndarray   # [0, 1) id of the parcel
    row: np.ndarray      # metres across the sowing direction (rows are lines of constant value)
    edge: np.ndarray     # metres to the parcel's nearest edge
    grazed: np.ndarray   # bool: a pasture with a herd on it


def parcels(zones: tuple[FarmZone, ...], xs: np.ndarray, ys: np.ndarray) -> ParcelWindow:
    """Parcel fields for the grid (ys rows, xs columns)."""
    x, y = xs[None, :], ys[:, None]
    # Only zones that can be nearest somewhere in the window (triangle inequality at its centre).
    cx, cy = (xs[0] + xs[-1]) / 2, (ys[0] + ys[-1]) / 2
    half_diag = np.hypot(xs[-1] - xs[0], ys[-1] - ys[0]) / 2
    centre_d = np.array([np.hypot(z.x - cx, z.y - cy) for z in zones])
    candidates = [z for z, d in zip(zones, centre_d, strict=True) if d <= centre_d.min() + 2 * half_diag]
    best = np.full((len(ys), len(xs)), np.inf)
    second = best.copy()
    zone = np.zeros(best.shape, np.int64)
    for i, z in enumerate(candidates):
        d2 = (x - z.x) ** 2 + (y - z.y) ** 2
        second = np.where(d2 < best, best, np.minimum(second, d2))
        zone = np.where(d2 < best, i, zone)
        best = np.minimum(best, d2)
    zones = tuple(candidates)
    zx, zy = np.array([z.x for z in zones])[zone], np.array([z.y for z in zones])[zone]
    ang = np.array([z.angle for z in zones])[zone]
    width = np.array([z.column_m for z in zones])[zone]
    key = np.array([z.key for z in zones], dtype=np.int64)[zone]
    ca, sa = np.cos(ang), np.sin(ang)
    a = (x - zx) * ca + (y - zy) * sa
    b = -(x - zx) * sa + (y - zy) * ca
    col = np.floor(a / width).astype(np.int64)
    length = 140.0 + 330.0 * hash_uniform(7, key, col)
    bb = b + hash_uniform(8, key, col) * length
    row = np.floor(bb / length).astype(np.int64)
    pid = hash_uniform(9, key, col, row)
    la, lb = a - col * width, bb - row * length
    edge = np.minimum(np.minimum(la, width - la), np.minimum(lb, length - lb))
    crop = np.searchsorted(np.cumsum(CROP_SHARES), pid * 0.999999, side="right").astype(np.int8)
    along_a = hash_uniform(10, key, col, row) < 0.7  # most parcels are sown along their length
    row_coord = np.where(along_a, la, lb)
    # Zone borders are parcel edges too (where the nearest zone changes).
    edge = np.minimum(edge, (np.sqrt(second) - np.sqrt(best)) / 2)
    grazed = (crop == CROP["pasture"]) & (hash_uniform(11, key, col, row) < 0.45)
    return ParcelWindow(crop, pid.astype(np.float32), row_coord.astype(np.float32), edge.astype(np.float32), grazed)
