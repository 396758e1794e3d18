"""Pair tables and splits (paper, spatially blocked, column)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from engine.config.data import DataConfig
from engine.data.pair_table import scan_pair_table
from engine.data.records import PairRecord
from engine.data.source import open_source
from engine.data.splits import assign_splits, block_cell, blocked_split, paper_split
from engine.errors import ConfigError, DatasetError
from engine.evaluate import haversine_km
from tests.engine.fixtures import make_pair_table


def _rewrite(table: Path, change: dict[int, dict[str, str]], drop: str | None = None) -> None:
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    for i, values in change.items():
        rows[i].update(values)
    fields = [c for c in rows[0] if c != drop]
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_pair_table_reads_paths_relative_to_the_table(tmp_path: Path) -> None:
    table = make_pair_table(tmp_path / "pairs", n=12)
    records, report = scan_pair_table(table)
    assert len(records) == 12 and report.describe() == "12 rows: 12 usable"
    assert records[3].image == tmp_path / "pairs" / "images" / "p003.jpg" and records[3].image.is_file()
    assert records[3].split == "train" and records[4].split == "test" and records[1].split == "val"
    assert records[5].title == "pair 5"
    source = open_source(tmp_path / "pairs")  # the folder works as well as the CSV
    assert source.layout == "pairs" and source.split_rule == "column"
    assert source.indices("val") == [1, 7] and source.indices("test") == [4, 10]


def test_bad_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    table = make_pair_table(tmp_path / "pairs", n=12)
    (tmp_path / "pairs" / "images" / "p002.jpg").unlink()
    _rewrite(table, {5: {"latitude": "95"}, 6: {"longitude": "east"}, 7: {"audio": "audio/none.wav"}})
    records, report = scan_pair_table(table)
    assert report.counts == {"missing image": 1, "bad coordinates": 2, "missing audio": 1}
    assert report.describe() == "12 rows: 8 usable, 2 bad coordinates, 1 missing image, 1 missing audio"
    assert [r.key for r in records] == ["p000", "p001", "p003", "p004", "p008", "p009", "p010", "p011"]


def test_table_level_problems_stop(tmp_path: Path) -> None:
    table = make_pair_table(tmp_path / "pairs", n=6)
    _rewrite(table, {2: {"split": "holdout"}})
    with pytest.raises(DatasetError, match=r"pairs.csv:4: split 'holdout' is not one of train, val, test"):
        scan_pair_table(table)
    _rewrite(table, {2: {"split": "train"}}, drop="audio")
    with pytest.raises(DatasetError, match=r"pairs.csv: missing column\(s\) audio"):
        scan_pair_table(table)


def test_paper_split_by_key() -> None:
    assert [paper_split(k) for k in range(10)] == ["train", "train", "test", "train", "train", "test",
                                                   "train", "val", "train", "train"]
    assert paper_split(91862) == "test" and paper_split(54077) == "val"


def test_blocked_cells_are_about_block_km_wide() -> None:
    for lat in (0.3, 45.2, 69.9):
        col, row = block_cell(10.0, lat, 10.0)
        # Walk east until the column changes: the cell's width, measured on the sphere.
        lon = 10.0
        while block_cell(lon, lat, 10.0)[0] == col:
            lon += 0.001
        west = lon - 0.001
        while block_cell(west, lat, 10.0)[0] == col:
            west -= 0.001
        width = haversine_km(west, lat, lon, lat)
        assert 9.0 < width < 11.0, (lat, width)
        height = 10.0 / (6371.0 * math.pi / 180)
        assert block_cell(10.0, (row + 0.5) * height, 10.0)[1] == row


def test_blocked_split_keeps_cells_whole_and_has_the_paper_fractions() -> None:
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(-180, 180, 6000), np.degrees(np.arcsin(rng.uniform(-0.95, 0.95, 6000)))
    splits = [blocked_split(a, b, 10.0) for a, b in zip(lon, lat, strict=True)]
    fractions = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert abs(fractions["test"] - 0.2) < 0.02 and abs(fractions["val"] - 0.1) < 0.015
    # Points 1 km apart in the same cell share a split.
    for a, b in zip(lon[:200], lat[:200], strict=True):
        col, row = block_cell(a, b, 10.0)
        nudged = (a + 0.001, b)
        if block_cell(*nudged, 10.0) == (col, row):
            assert blocked_split(*nudged, 10.0) == blocked_split(a, b, 10.0)


def test_split_rules() -> None:
    recs = [PairRecord(key=str(k), lon=0.01 * k, lat=0.0, image=Path("i"), audio=Path("a"), number=k) for k in range(20)]
    paper, rule = assign_splits(recs, "auto", layout="soundingearth")
    assert rule == "paper" and paper == [paper_split(k) for k in range(20)]
    _, rule = assign_splits(recs, "auto", layout="pairs")
    assert rule == "blocked"
    with pytest.raises(ConfigError, match="--split-rule column: the table has no split column"):
        assign_splits(recs, "column")
    with pytest.raises(ConfigError, match="unknown rule 'random'"):
        assign_splits(recs, "random")


def test_blocked_rule_on_a_table_without_split_column(tmp_path: Path) -> None:
    make_pair_table(tmp_path / "pairs", n=12, split_column=False)
    source = open_source(tmp_path / "pairs", DataConfig(block_km=5.0))
    assert source.split_rule == "blocked"
    assert source.splits == [blocked_split(r.lon, r.lat, 5.0) for r in source.records]


def test_image_ground_size_from_the_layout(tmp_path: Path) -> None:
    from engine.data.source import image_ground_m
    from tests.engine.fixtures import make_soundingearth

    make_pair_table(tmp_path / "pairs", n=6)
    assert image_ground_m(open_source(tmp_path / "pairs")) is None
    (tmp_path / "pairs" / "world.json").write_text('{"format": "soundscape-demo-world", "image_size_m": 256.0}')
    assert image_ground_m(open_source(tmp_path / "pairs")) == 256.0
    make_soundingearth(tmp_path / "se")
    assert image_ground_m(open_source(tmp_path / "se")) == pytest.approx(204.8)
