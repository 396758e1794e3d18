"""Campaign splits are by site and spatially blocked: no site in two splits, no leakage into training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.audio import FrontEndConfig
from engine.campaign.pairs import open_campaign_source
from engine.campaign.site_splits import campaign_block_km, split_sites
from engine.config.data import DataConfig
from engine.data.splits import block_cell
from engine.errors import ConfigError
from tests.engine.campaign.fixture import make_campaign


def _grid(n: int = 40, step_deg: float = 0.004) -> tuple[list[str], list[float], list[float]]:
    names = [f"site{k:02d}" for k in range(n)]
    return names, [9.0 + (k % 8) * step_deg for k in range(n)], [45.0 + (k // 8) * step_deg for k in range(n)]


def test_blocked_site_split_keeps_cells_whole() -> None:
    names, lons, lats = _grid()
    splits, rule = split_sites(names, lons, lats)
    block = campaign_block_km(lons, lats, 10.0)
    assert block < 1.0 and f"{block:g} km" in rule  # shrunk to the campaign's extent
    cell_splits: dict[tuple[int, int], set[str]] = {}
    for lon, lat, split in zip(lons, lats, splits, strict=True):
        cell_splits.setdefault(block_cell(lon, lat, block), set()).add(split)
    assert all(len(s) == 1 for s in cell_splits.values())  # a test site has no train site in its cell
    counts = {s: splits.count(s) for s in ("train", "val", "test")}
    assert counts["test"] >= 8 and counts["val"] >= 4 and counts["train"] >= 20
    assert split_sites(names, lons, lats) == (splits, rule)  # deterministic
    assert split_sites(names, lons, lats, seed=1)[0] != splits


def test_holdout_sites_are_exactly_the_test_split() -> None:
    names, lons, lats = _grid()
    splits, rule = split_sites(names, lons, lats, holdout=["site03", "site17", "site30"])
    assert sorted(n for n, s in zip(names, splits, strict=True) if s == "test") == ["site03", "site17", "site30"]
    assert splits.count("val") >= 4 and rule.startswith("held-out sites (3)")
    with pytest.raises(ConfigError, match="--holdout-sites: unknown site.*site99"):
        split_sites(names, lons, lats, holdout=["site99"])


def test_training_windows_never_come_from_held_out_sites(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path, n_sites=9, files_per_site=2, seconds=3.0)
    cfg = DataConfig(stored_size=32, audio_crop_seconds=1.0, holdout_sites=("S02", "S07"))
    source = open_campaign_source(campaign, cfg, FrontEndConfig(sample_rate=8000, f_max=4000.0), 150.0,
                                  tmp_path / "cache")
    keys = [r.key for r in source.records]
    test = {k for k, s in zip(keys, source.splits, strict=True) if s == "test"}
    assert test == {"S02", "S07"}
    train = source.indices("train")
    rng = np.random.default_rng(0)
    from engine.campaign.windows import draw_window

    for i in train:
        for _ in range(5):
            window = draw_window(source.files[i], 1.0, rng)
            assert window.path.parent.name == keys[i] and window.path.parent.name not in test
    assert len({s for s in source.splits}) == 3 and len(keys) == len(set(keys))  # one record per site
