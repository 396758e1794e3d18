"""The scan on real Song Meter SM4 recordings laid out as sites over the real Landsat scene (EPSG:32618)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import guano
import pytest
import rasterio
from pyproj import Transformer

from engine.campaign import load_campaign, load_skipped
from engine.campaign.scan import ScanOptions, scan_to_folder
from tests.engine.campaign.helpers import audiomoth_file

INSIDE = (-77.75, 24.56)  # near the scene's centre
OUTSIDE = (-75.90, 24.56)  # east of it
GUANO_AT = (-77.60, 24.40)


@pytest.fixture()
def layout(realdata: Path, tmp_path: Path) -> dict:
    audio = sorted((realdata / "audio").glob("S4A03895_20190522_*.wav"))
    assert len(audio) >= 9
    rec = tmp_path / "recordings"
    (rec / "north" / "siteA").mkdir(parents=True)
    (rec / "siteB").mkdir()
    (rec / "siteC").mkdir()
    for f in audio[:4]:
        shutil.copy(f, rec / "north" / "siteA" / f.name)  # nested one level deeper
    for f in audio[4:7]:
        shutil.copy(f, rec / "siteB" / f.name)
    for f in audio[7:9]:  # positions in GUANO, written with the guano library into the real files
        target = rec / "siteC" / f.name
        shutil.copy(f, target)
        md = guano.GuanoFile(str(target))
        md["Loc Position"] = (GUANO_AT[1], GUANO_AT[0])
        md["Serial"] = "S4A03895"
        md["Make"] = "Wildlife Acoustics, Inc."
        md["Model"] = "SM4"
        md.write(make_backup=False)
    moth = audiomoth_file(rec / "siteD", datetime(2019, 5, 23, 9, 15, tzinfo=UTC), rate=16000)
    sites = tmp_path / "sites.csv"
    sites.write_text("site,longitude,latitude\n"
                     f"siteA,{INSIDE[0]},{INSIDE[1]}\nsiteB,{OUTSIDE[0]},{OUTSIDE[1]}\nsiteD,{INSIDE[0] + 0.1},{INSIDE[1]}\n")
    return {"rec": rec, "sites": sites, "audio": audio, "moth": moth,
            "imagery": realdata / "imagery" / "RGB.byte.tif"}


def test_positions_times_and_imagery(layout: dict, tmp_path: Path) -> None:
    result = scan_to_folder(ScanOptions(layout["rec"], sites_table=layout["sites"], imagery=(layout["imagery"],),
                                        timezone="America/Nassau"), tmp_path / "campaign",
                            now=datetime(2026, 1, 1, tzinfo=UTC))
    campaign = load_campaign(tmp_path / "campaign")
    assert len(campaign.recordings) == 10 and load_skipped(tmp_path / "campaign") == []
    by_site = campaign.by_site()
    assert sorted(by_site) == ["siteA", "siteB", "siteC", "siteD"]
    a = by_site["siteA"][0]
    assert (a.lon, a.lat, a.position_source, a.recorder, a.recorder_model) == (*INSIDE, "sites", "S4A03895", "song-meter")
    assert (a.sample_rate, a.channels, a.duration_s) == (22000, 1, pytest.approx(10.0))
    # Song Meter names are local time; Nassau keeps EDT (UTC-4) in May.
    for rec in campaign.recordings:
        if rec.recorder_model == "song-meter":
            named = datetime.strptime(rec.path.stem.split("_", 1)[1], "%Y%m%d_%H%M%S")
            assert rec.start_local.replace(tzinfo=None) == named
            assert rec.start_utc == (named + timedelta(hours=4)).replace(tzinfo=UTC)
            assert rec.start_local.utcoffset() == timedelta(hours=-4) and rec.timezone == "America/Nassau"
    c = by_site["siteC"]
    assert {(r.lon, r.lat, r.position_source) for r in c} == {(*GUANO_AT, "guano")}
    d = by_site["siteD"][0]  # AudioMoth: the comment's UTC time, local time in Nassau
    assert d.start_utc == datetime(2019, 5, 23, 9, 15, tzinfo=UTC) and d.start_local.hour == 5
    assert (d.recorder, d.sample_rate) == ("24F319055FDF2F5B", 16000)

    # Inside/outside the scene, against an independent pyproj transform into the scene's CRS.
    with rasterio.open(layout["imagery"]) as ds:
        left, bottom, right, top = ds.bounds
        crs = ds.crs.to_string()
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    expected_outside = sorted(s.name for s in campaign.sites
                              if not (left <= to_utm.transform(s.lon, s.lat)[0] <= right
                                      and bottom <= to_utm.transform(s.lon, s.lat)[1] <= top))
    assert expected_outside == ["siteB"] == campaign.summary["outside_imagery"]
    assert {s.name: s.in_imagery for s in campaign.sites} == {"siteA": True, "siteB": False, "siteC": True,
                                                              "siteD": True}

    summary = result.summary
    assert summary["usable"] == 10 and summary["sites"] == 4
    assert summary["hours_per_site"]["siteA"] == pytest.approx(4 * 10 / 3600)
    local_hours = [int(f.stem.split("_")[2][:2]) for f in layout["audio"][:9]] + [5]
    assert summary["per_hour_of_day"] == [local_hours.count(h) for h in range(24)]
    assert summary["per_date"] == {"2019-05-22": 9, "2019-05-23": 1}
    assert summary["warnings"] == []
    assert summary["recorder_details"]["24F319055FDF2F5B"] == {
        "model": "audiomoth", "files": 1, "gain": "medium", "battery_v": [4.2, 4.2], "temperature_c": [18.3, 18.3]}


def test_without_a_timezone_local_names_are_taken_as_utc_with_a_warning(layout: dict, tmp_path: Path) -> None:
    result = scan_to_folder(ScanOptions(layout["rec"], sites_table=layout["sites"]), tmp_path / "c")
    a = result.campaign.by_site()["siteA"][0]
    assert a.start_utc.hour == int(a.path.stem.split("_")[2][:2]) and a.timezone == "UTC"
    assert any("taken as UTC" in w and "--timezone" in w for w in result.summary["warnings"])
    assert all(s.in_imagery is None for s in result.campaign.sites)  # no imagery given
