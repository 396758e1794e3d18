"""An atlas built from a campaign folder: each recording keeps its site and times, and tile queries can be
limited to a local hour-of-day or date range (CLI and the torch-free API)."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from engine.atlas import open_atlas, tile_soundscape
from engine.atlas.format import ATLAS_VERSION
from engine.atlas.times import TimeFilter, in_hours, parse_dates, parse_hours
from engine.campaign.demo import generate_campaign
from engine.campaign.scan import ScanOptions, scan_to_folder
from engine.cli import main
from engine.errors import ConfigError
from tests.engine.atlas.handmade import HandmadeBundle


@pytest.fixture(scope="module")
def campaign_atlas(tmp_path_factory: pytest.TempPathFactory, bundle: HandmadeBundle) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("campaign-atlas")
    demo = root / "demo"
    generate_campaign(demo, sites=4, files_per_site=3, file_seconds=5.0, seed=5, world="tiny", workers=1)
    scan_to_folder(ScanOptions(demo / "recordings", sites_table=demo / "sites.csv",
                               imagery=(demo / "imagery" / "ortho.tif",)), root / "campaign")
    assert main(["atlas", "build", "--bundle", str(bundle.path), "--out", str(root / "atlas"), "--imagery",
                 str(demo / "imagery" / "ortho.tif"), "--recordings", str(root / "campaign"), "--no-indices"]) == 0
    return root / "campaign", root / "atlas"


def _table(campaign: Path) -> dict[str, dict[str, str]]:
    """The campaign's recordings.csv read with the csv module, keyed by path (the atlas id)."""
    with open(campaign / "recordings.csv", newline="", encoding="utf-8") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def _local_hour(row: dict[str, str]) -> float:
    local = datetime.fromisoformat(row["start_local"])
    return local.hour + local.minute / 60 + local.second / 3600


def test_each_recording_keeps_the_campaigns_site_and_times(campaign_atlas: tuple[Path, Path]) -> None:
    campaign, atlas_dir = campaign_atlas
    table = _table(campaign)
    atlas = open_atlas(atlas_dir)
    rec, times = atlas.recordings, atlas.recordings.times
    assert sorted(rec.ids) == sorted(table) and len(rec) == 12
    for i, rid in enumerate(rec.ids):
        row = table[rid]
        assert times.sites[i] == row["site"] and times.recorders[i] == row["recorder"]
        assert times.start_utc[i] == row["start_utc"] and times.start_local[i] == row["start_local"]
        assert times.hour[i] == pytest.approx(_local_hour(row), abs=1e-5)
        assert (rec.lon[i], rec.lat[i]) == pytest.approx((float(row["longitude"]), float(row["latitude"])))
        assert rec.durations[i] == pytest.approx(float(row["duration_s"]), abs=1e-3)
    # UTC and local differ by the site's offset (Europe/Berlin in June: +2 h)
    utc = datetime.fromisoformat(times.start_utc[0].replace("Z", "+00:00"))
    assert datetime.fromisoformat(times.start_local[0]) == utc
    assert datetime.fromisoformat(times.start_local[0]).utcoffset().total_seconds() == 7200
    assert atlas.manifest["format_version"] == ATLAS_VERSION  # the time keys are optional meta.jsonl keys: no bump


@pytest.mark.parametrize("hours, first, last", [("4-8", 4, 8), ("21-4", 21, 4), ("12-24", 12, 24)])
def test_hours_limit_the_recordings_of_a_tile_query(campaign_atlas: tuple[Path, Path], hours: str, first: int,
                                                    last: int, capsys: pytest.CaptureFixture[str]) -> None:
    campaign, atlas_dir = campaign_atlas
    table = _table(campaign)
    if first < last:
        expected = {p for p, row in table.items() if first <= _local_hour(row) < last}
    else:  # wraps midnight
        expected = {p for p, row in table.items() if _local_hour(row) >= first or _local_hour(row) < last}
    assert expected and expected != set(table)  # the generated day has files both in and out of range
    assert main(["atlas", "query", "--atlas", str(atlas_dir), "--tile", "0", "--top-k", "50", "--json",
                 "--hours", hours]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {r["id"] for r in out["best"]} == expected
    assert {r["id"] for r in out["nearest"]} == expected
    for r in out["best"]:
        assert r["site"] == table[r["id"]]["site"] and r["start_local"] == table[r["id"]]["start_local"]
    # the text output shows each listed recording's site and local time
    assert main(["atlas", "query", "--atlas", str(atlas_dir), "--tile", "0", "--top-k", "50", "--hours", hours]) == 0
    text = capsys.readouterr().out
    for rid in expected:
        row = table[rid]
        assert f"[{row['site']} {row['start_local'][:16].replace('T', ' ')}" in text


def test_dates_limit_and_the_api_matches_the_cli(campaign_atlas: tuple[Path, Path]) -> None:
    campaign, atlas_dir = campaign_atlas
    atlas = open_atlas(atlas_dir)
    day = {datetime.fromisoformat(r["start_local"]).date() for r in _table(campaign).values()}
    assert day == {date(2024, 6, 15)}
    best, nearest = tile_soundscape(atlas, 0, 50, where=TimeFilter(dates=parse_dates("2024-06-15")))
    assert len(best) == len(nearest) == 12
    assert tile_soundscape(atlas, 0, 50, where=TimeFilter(dates=parse_dates("2024-06-16..2024-06-30"))) == ([], [])
    both = TimeFilter(hours=parse_hours("4-8"), dates=parse_dates("2024-06-01..2024-06-30"))
    best, _ = tile_soundscape(atlas, 0, 50, where=both)
    assert {m.index for m in best} == set(np.flatnonzero(in_hours(atlas.recordings.times.hour, (4, 8))))


@pytest.mark.parametrize("option, text, expected", [
    ("--hours", "25-4", "outside 0-24"), ("--hours", "4", "not an hour range"), ("--hours", "6-6", "empty range"),
    ("--hours", "dawn", "not an hour range"), ("--dates", "2024-06-30..2024-06-01", "ends before it starts"),
    ("--dates", "June", "not a date range")])
def test_bad_ranges_are_one_line(campaign_atlas: tuple[Path, Path], option: str, text: str, expected: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    _, atlas_dir = campaign_atlas
    assert main(["atlas", "query", "--atlas", str(atlas_dir), "--tile", "0", option, text]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {option}:") and expected in err[0]


def test_hour_ranges() -> None:
    hours = np.array([0.0, 3.99, 4.0, 7.5, 8.0, 21.0, 23.9, np.nan])
    assert in_hours(hours, parse_hours("4-8")).tolist() == [False, False, True, True, False, False, False, False]
    assert in_hours(hours, parse_hours("21-4")).tolist() == [True, True, False, False, False, True, True, False]
    assert in_hours(hours, parse_hours("0-24")).tolist() == [True] * 7 + [False]
    with pytest.raises(ConfigError):
        parse_hours("4-28")


def test_recordings_without_times_never_match_a_limit(tmp_path: Path, bundle: HandmadeBundle, realdata: Path) -> None:
    audio = realdata / "audio" / "spinetail.wav"
    if not audio.is_file():
        pytest.skip(f"{audio} missing")
    table = tmp_path / "pairs.csv"
    table.write_text(f"id,longitude,latitude,image,audio\nbird,-60.0,-10.0,,{audio}\n")
    assert main(["atlas", "build", "--bundle", str(bundle.path), "--out", str(tmp_path / "a"),
                 "--recordings", str(table), "--no-indices"]) == 0
    atlas = open_atlas(tmp_path / "a")
    assert atlas.recordings.times.sites == [None] and np.isnan(atlas.recordings.times.hour[0])
    from engine.atlas import nearest_recordings

    assert len(nearest_recordings(atlas, -60.0, -10.0, 5)) == 1
    assert nearest_recordings(atlas, -60.0, -10.0, 5, where=TimeFilter(hours=(0.0, 24.0))) == []


def test_acoustic_indices_use_the_campaigns_local_hour(campaign_atlas: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("maad", reason="scikit-maad (the engine extra) computes the indices")
    import shutil

    from engine.ecology.atlas_indices import add_atlas_indices
    from engine.ecology.table import hour_of_day, start_from_name

    campaign, atlas_dir = campaign_atlas
    copy = tmp_path / "atlas"
    shutil.copytree(atlas_dir, copy)
    add_atlas_indices(copy, window_s=None)
    atlas = open_atlas(copy)
    table = _table(campaign)
    expected = [_local_hour(table[rid]) for rid in atlas.recordings.ids]
    np.testing.assert_allclose(atlas.indices.hour, expected, atol=1e-5)
    # AudioMoth names are UTC: the name alone would be two hours off in Berlin's summer
    moths = [i for i, rid in enumerate(atlas.recordings.ids) if table[rid]["recorder_model"] == "audiomoth"]
    assert moths
    for i in moths:
        assert (expected[i] - hour_of_day(start_from_name(atlas.recordings.paths[i]))) % 24 == pytest.approx(2.0)
