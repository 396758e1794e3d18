"""Train/validation/test splits (torch-free).

- ``paper``: SoundingEarth's split by ``key % 10``: 2 and 5 test, 7 validation, the rest train.
  Keys that are not integers are hashed to a stable number first.
- ``blocked``: a spatially blocked ("fair") split: the Earth is cut into cells of about ``block_km``
  and whole cells go to one split (70/10/20 % like the paper's split, drawn by a hash of the cell), so
  no test point has a training point from its own cell next to it.
- ``column``: the table's own ``split`` column (the demo world has one, drawn by spatial blocks).
- ``auto``: ``column`` when every record has a split value, else ``paper`` for SoundingEarth and
  ``blocked`` for pair tables.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from engine.data.records import PairRecord
from engine.errors import ConfigError
from engine.geo import KM_PER_DEGREE

SPLIT_RULES = ("auto", "paper", "blocked", "column")
SPLIT_NAMES = ("train", "val", "test")
BLOCK_FRACTIONS = {"test": 0.2, "val": 0.1}  # the rest is train, as in the paper's split


def paper_split(number: int) -> str:
    """The SoundingEarth paper's split of an integer key."""
    r = number % 10
    return "test" if r in (2, 5) else "val" if r == 7 else "train"


def _unit_hash(text: str) -> float:
    """A stable pseudo-random number in [0, 1) for a text (same on every machine and Python run)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2.0 ** 64


def block_cell(lon: float, lat: float, block_km: float) -> tuple[int, int]:
    """The (column, row) of the roughly block_km x block_km cell holding a point.

    Rows are bands of latitude ``block_km`` high; within a band, columns are ``block_km`` wide at the
    band's centre latitude, so cells keep their ground size away from the equator.
    """
    row = math.floor(lat * KM_PER_DEGREE / block_km)
    centre_lat = (row + 0.5) * block_km / KM_PER_DEGREE
    width_deg = block_km / (KM_PER_DEGREE * max(math.cos(math.radians(centre_lat)), 1e-6))
    return math.floor((lon + 180.0) / width_deg), row


def blocked_split(lon: float, lat: float, block_km: float = 10.0, seed: int = 0) -> str:
    """The split of a point's cell (see module docstring); all points of a cell share it."""
    col, row = block_cell(lon, lat, block_km)
    u = _unit_hash(f"{seed}:{block_km}:{col}:{row}")
    return "test" if u < BLOCK_FRACTIONS["test"] else "val" if u < sum(BLOCK_FRACTIONS.values()) else "train"


def resolve_rule(rule: str, records: Sequence[PairRecord], layout: str) -> str:
    if rule not in SPLIT_RULES:
        raise ConfigError("--split-rule", f"unknown rule {rule!r}", f"use one of {', '.join(SPLIT_RULES)}")
    if rule == "auto":
        if records and all(r.split for r in records):
            return "column"
        return "paper" if layout == "soundingearth" else "blocked"
    if rule == "column" and not all(r.split for r in records):
        raise ConfigError("--split-rule column", "the table has no split column (or empty values)",
                          "add a split column (train/val/test) or use --split-rule blocked")
    return rule


def assign_splits(records: Sequence[PairRecord], rule: str, layout: str = "pairs", block_km: float = 10.0,
                  seed: int = 0) -> tuple[list[str], str]:
    """The split of each record under a rule.

    Args:
        records: the dataset's records.
        rule: one of ``SPLIT_RULES``.
        layout: ``soundingearth`` or ``pairs`` (decides what ``auto`` means).
        block_km, seed: cell size and hash seed of the ``blocked`` rule.
    Returns:
        (one of train/val/test per record, the rule used).
    """
    rule = resolve_rule(rule, records, layout)
    if block_km <= 0:
        raise ConfigError("--block-km", f"must be positive, got {block_km}", "use e.g. 10")
    out = []
    for r in records:
        if rule == "column":
            out.append(str(r.split))
        elif rule == "paper":
            out.append(paper_split(r.number if r.number is not None else int(_unit_hash(r.key) * 2 ** 31)))
        else:
            out.append(blocked_split(r.lon, r.lat, block_km, seed))
    return out, rule
