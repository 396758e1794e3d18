"""Train/validation/test splits of a campaign's sites (torch-free).

A campaign's recordings are split by site, never by file: every window of a site belongs to the site's
split. The split is spatially blocked like :mod:`engine.data.splits`'s ``blocked`` rule (whole cells of
the ground go to one split, so a test site has no training site in its own cell), with two changes for
campaigns, whose sites often lie within a few kilometres: the cells shrink to a quarter of the sites'
extent when ``block_km`` would hold them all, and whole cells are taken in a seeded hash order until the
test and validation shares (20 % and 10 % of the sites, as the paper's split) are reached, because a
per-cell coin toss over a handful of cells gives lopsided splits. ``holdout`` names the test sites
instead; validation is then drawn by cells from the other sites.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.data.splits import BLOCK_FRACTIONS, _unit_hash, block_cell
from engine.errors import ConfigError
from engine.geo import KM_PER_DEGREE

MIN_BLOCK_KM = 0.05


def campaign_block_km(lons: Sequence[float], lats: Sequence[float], block_km: float) -> float:
    """The cell size used: ``block_km``, or a quarter of the sites' extent when that is smaller."""
    if not lons:
        return block_km
    mid = math.radians((min(lats) + max(lats)) / 2)
    extent = max((max(lats) - min(lats)) * KM_PER_DEGREE,
                 (max(lons) - min(lons)) * KM_PER_DEGREE * max(math.cos(mid), 1e-6))
    return max(MIN_BLOCK_KM, min(block_km, extent / 4)) if extent > 0 else block_km


def _cells_in_order(names: Sequence[str], lons: Sequence[float], lats: Sequence[float], block_km: float,
                    seed: int) -> list[list[int]]:
    """The sites (indices) of each occupied cell, cells in a seeded hash order."""
    cells: dict[tuple[int, int], list[int]] = {}
    for i in range(len(names)):
        cells.setdefault(block_cell(lons[i], lats[i], block_km), []).append(i)
    order = sorted(cells, key=lambda c: _unit_hash(f"{seed}:{block_km}:{c[0]}:{c[1]}"))
    return [cells[c] for c in order]


def split_sites(names: Sequence[str], lons: Sequence[float], lats: Sequence[float], block_km: float = 10.0,
                seed: int = 0, holdout: Sequence[str] = ()) -> tuple[list[str], str]:
    """The split (train/val/test) of each site.

    Args:
        names, lons, lats: the sites.
        block_km: the largest cell size (see module docstring).
        seed: seed of the cell order.
        holdout: test sites chosen by name (``--holdout-sites``); empty: drawn by cells.
    Returns:
        (one split per site, the rule as text, e.g. ``blocked sites (0.75 km cells)``).
    Raises:
        ConfigError: a holdout name that is not a site, or every site held out.
    """
    unknown = sorted(set(holdout) - set(names))
    if unknown:
        shown = ", ".join(sorted(names)[:8]) + (", ..." if len(names) > 8 else "")
        raise ConfigError("--holdout-sites", f"unknown site(s) {', '.join(unknown)}", f"use names from sites.csv: {shown}")
    if holdout and len(set(holdout)) >= len(names):
        raise ConfigError("--holdout-sites", "names every site, leaving none to train on", "hold out fewer sites")
    block = campaign_block_km(list(lons), list(lats), block_km)
    splits = ["train"] * len(names)
    n = len(names)
    held = set(holdout)
    for i, name in enumerate(names):
        if name in held:
            splits[i] = "test"
    wanted = {"val": math.ceil(BLOCK_FRACTIONS["val"] * n)} if held else {
        "test": math.ceil(BLOCK_FRACTIONS["test"] * n), "val": math.ceil(BLOCK_FRACTIONS["val"] * n)}
    free = [i for i in range(n) if names[i] not in held]
    cells = _cells_in_order([names[i] for i in free], [lons[i] for i in free], [lats[i] for i in free], block, seed)
    counts = {"test": 0, "val": 0}
    for cell in cells:
        target = next((s for s in wanted if counts[s] < wanted[s]), None)
        if target is None or len(cells) < 3:
            break  # too few cells to hold anything out without leaving nothing to train on
        for j in cell:
            splits[free[j]] = target
        counts[target] += len(cell)
    if "train" not in splits:  # a cell bigger than the shares took the rest: give the last cell back
        for j in cells[-1]:
            splits[free[j]] = "train"
    rule = f"held-out sites ({len(held)}) + blocked val" if held else "blocked sites"
    return splits, f"{rule} ({block:g} km cells)"
