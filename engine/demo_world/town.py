"""Towns and villages: a rotated street grid with irregular blocks; dense perimeter blocks with
courtyards, squares and parks in the centre; detached houses in gardens in the suburbs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.demo_world.layout import Town
from engine.demo_world.noise import hash_uniform, value_noise


@dataclass
class TownWindow:
    """Per-pixel town fields for a window; all False/0 outside the built-up area."""

    urban: np.ndarray      # bool
    core: np.ndarray       # bool: dense centre
    street: np.ndarray     # bool
    building: np.ndarray   # bool
    height: np.ndarray     # metres above ground (roofs)
    roof: np.ndarray       # [0, 1) id of the building (its roof colour)
    green: np.ndarray      # bool: gardens and parks
    paved: np.ndarray      # bool: squares, courtyards, pavements


def empty_town_window(shape: tuple[int, int]) -> TownWindow:
    false = np.zeros(shape, bool)
    zero = np.zeros(shape, np.float32)
    return TownWindow(false, false.copy(), false.copy(), false.copy(), zero, zero.copy(), false.copy(),
                      false.copy())


def add_town(win: TownWindow, town: Town, xs: np.ndarray, ys: np.ndarray) -> None:
    """Draw ``town`` into ``win`` (in place), only inside the town's bounding box."""
    reach = town.radius * 1.4
    c0, c1 = np.searchsorted(xs, town.x - reach), np.searchsorted(xs, town.x + reach)
    r0, r1 = np.searchsorted(ys, town.y - reach), np.searchsorted(ys, town.y + reach)
    if c0 >= c1 or r0 >= r1:
        return
    sx, sy = xs[c0:c1], ys[r0:r1]
    dx, dy = sx[None, :] - town.x, sy[:, None] - town.y
    dist = np.hypot(dx, dy)
    edge_noise = value_noise(sx, sy, town.radius * 0.45, town.key)
    urban = dist < town.radius * (0.8 + 0.45 * edge_noise)
    if not urban.any():
        return
    core = dist < town.core_radius * (0.8 + 0.5 * value_noise(sx, sy, town.radius * 0.3, town.key + 1))

    ca, sa = np.cos(town.angle), np.sin(town.angle)
    a = dx * ca + dy * sa
    b = -dx * sa + dy * ca
    block = town.block_m
    col = np.floor(a / block).astype(np.int64)
    shift = hash_uniform(town.key, col, 0) * block
    row_len = block * (1.0 + 0.6 * hash_uniform(town.key, col, 1))
    bb = b + shift
    row = np.floor(bb / row_len).astype(np.int64)
    street_w = np.where(core, 10.0, 7.0)
    la = a - col * block - street_w
    lb = bb - row * row_len - street_w
    width, depth = block - street_w, row_len - street_w
    street = (la < 0) | (lb < 0)

    # Distance into the block from its nearest side, which side, and the position along that side.
    sides = np.stack([la, width - la, lb, depth - lb])
    side = np.argmin(sides, axis=0)
    inset = np.take_along_axis(sides, side[None], 0)[0]
    along = np.where(side < 2, lb, la)
    block_id = hash_uniform(town.key, col, row, 2)

    # Centre: perimeter buildings (lots 10-22 m wide, 11-17 m deep) round a courtyard; squares and parks.
    lot_c = 10.0 + 12.0 * hash_uniform(town.key, col, row, side, 3)
    lot_index_c = np.floor(along / lot_c).astype(np.int64)
    roof_c = hash_uniform(town.key, col, row, side * 1000 + lot_index_c)
    deep_c = 11.0 + 6.0 * block_id
    square = block_id < 0.08
    park = (block_id >= 0.08) & (block_id < 0.15)
    build_c = (inset < deep_c) & ~square & ~park & ~street
    ridge_c = np.clip(deep_c / 2 - np.abs(inset - deep_c / 2), 0, None)
    height_c = 11.0 + 8.0 * roof_c + np.where(roof_c > 0.3, 0.7 * ridge_c, 0.0)  # gables, some flat roofs

    # Suburbs: houses 8-13 m deep, set back 5 m, on lots 16-26 m wide; gardens round them.
    lot_s = 16.0 + 10.0 * hash_uniform(town.key, col, row, side, 4)
    lot_index_s = np.floor(along / lot_s).astype(np.int64)
    in_lot = along - lot_index_s * lot_s
    roof_s = hash_uniform(town.key, col, row, side * 1000 + lot_index_s, 5)
    deep_s = 8.0 + 5.0 * roof_s
    build_s = ((inset > 5.0) & (inset < 5.0 + deep_s) & (in_lot > 3.0) & (in_lot < lot_s - 3.0)
               & (roof_s > 0.1) & ~street)
    ridge_s = np.clip(deep_s / 2 - np.abs(inset - 5.0 - deep_s / 2), 0, None)
    height_s = 5.0 + 0.8 * ridge_s

    building = urban & np.where(core, build_c, build_s)
    sl = (slice(r0, r1), slice(c0, c1))
    win.urban[sl] |= urban
    win.core[sl] |= urban & core
    win.street[sl] |= urban & street
    win.building[sl] |= building
    win.height[sl] = np.where(building, np.where(core, height_c, height_s), win.height[sl])
    win.roof[sl] = np.where(building, np.where(core, roof_c, roof_s), win.roof[sl])
    open_ground = urban & ~street & ~building
    win.green[sl] |= open_ground & np.where(core, park | ((inset > deep_c + 4) & (block_id > 0.6)), True)
    win.paved[sl] |= open_ground & np.where(core, ~park, False)
