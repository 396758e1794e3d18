"""The campaign folder round-trips through write_campaign / load_campaign, and bad folders fail in one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.campaign import (
    Campaign,
    CampaignRecording,
    Site,
    is_campaign,
    load_campaign,
    load_skipped,
    write_campaign,
)
from engine.errors import DatasetError


def _campaign(tmp_path: Path) -> Campaign:
    root = tmp_path / "recordings"
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2019, 5, 22, 6, 30, tzinfo=UTC)
    recs = [
        CampaignRecording(path=root / "siteA" / "20190522_063000.WAV", site="siteA", recorder="24F319055FDF2F5B",
                          recorder_model="audiomoth", lon=13.404954, lat=52.520008, position_source="sites",
                          start_utc=start, start_local=start.astimezone(berlin), timezone="Europe/Berlin",
                          duration_s=60.0, sample_rate=48000, channels=1),
        CampaignRecording(path=root / "deep" / "siteB" / "S4A03895_20190522_083000.wav", site="siteB",
                          recorder="S4A03895", recorder_model="song-meter", lon=-77.345, lat=25.06,
                          position_source="guano", start_utc=start + timedelta(hours=1),
                          start_local=(start + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-4))),
                          timezone="-04:00", duration_s=59.75, sample_rate=22050, channels=2),
    ]
    sites = [Site("siteA", 13.404954, 52.520008, 1, 60 / 3600, True),
             Site("siteB", -77.345, 25.06, 1, 59.75 / 3600, False)]
    summary = {"files": 3, "usable": 2, "skipped": 1, "sites": 2, "hours": 119.75 / 3600,
               "hours_per_site": {"siteA": 60 / 3600, "siteB": 59.75 / 3600},
               "per_hour_of_day": [0] * 4 + [1] + [0] * 3 + [1] + [0] * 15, "per_date": {"2019-05-22": 2},
               "outside_imagery": ["siteB"], "skipped_by_reason": {"clock implausible": 1}}
    return Campaign(root=tmp_path / "campaign", recordings_root=root, imagery=[tmp_path / "ortho.tif"],
                    timezone="Europe/Berlin", recordings=recs, sites=sites, summary=summary,
                    sites_table=tmp_path / "sites.csv")


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    original = _campaign(tmp_path)
    write_campaign(tmp_path / "campaign", original, [("siteA/19700101_000000.WAV", "clock implausible")])

    assert is_campaign(tmp_path / "campaign") and is_campaign(tmp_path / "campaign" / "campaign.json")
    loaded = load_campaign(tmp_path / "campaign")
    assert loaded.root == tmp_path / "campaign"
    assert loaded.recordings_root == original.recordings_root.resolve()
    assert loaded.recordings == original.recordings  # paths absolute again, times equal, floats exact
    assert [r.start_local.utcoffset() for r in loaded.recordings] == [timedelta(hours=2), timedelta(hours=-4)]
    assert loaded.recordings[0].start_utc.tzinfo == UTC
    assert loaded.sites == original.sites
    assert loaded.summary == original.summary
    assert loaded.imagery == [(tmp_path / "ortho.tif").resolve()]
    assert loaded.timezone == "Europe/Berlin" and loaded.sites_table == (tmp_path / "sites.csv").resolve()
    assert [r.site for r in loaded.by_site()["siteB"]] == ["siteB"]
    assert load_skipped(tmp_path / "campaign") == [("siteA/19700101_000000.WAV", "clock implausible")]


def test_files_follow_the_format(tmp_path: Path) -> None:
    write_campaign(tmp_path / "c", _campaign(tmp_path), [])
    lines = (tmp_path / "c" / "recordings.csv").read_text().splitlines()
    assert lines[0] == ("path,site,recorder,recorder_model,longitude,latitude,position_source,start_utc,"
                        "start_local,timezone,duration_s,sample_rate,channels")
    assert lines[1].startswith("siteA/20190522_063000.WAV,siteA,24F319055FDF2F5B,audiomoth,13.404954,52.520008,sites,"
                               "2019-05-22T06:30:00Z,2019-05-22T08:30:00+02:00,Europe/Berlin,60.0,48000,1")
    assert lines[2].startswith("deep/siteB/S4A03895_20190522_083000.wav,")
    sites = (tmp_path / "c" / "sites.csv").read_text().splitlines()
    assert sites[0] == "site,longitude,latitude,files,hours,in_imagery"
    assert sites[1].endswith(",true") and sites[2].endswith(",false")
    meta = json.loads((tmp_path / "c" / "campaign.json").read_text())
    assert meta["format"] == "soundscape-campaign" and meta["version"] == 1
    assert meta["created"].endswith("Z")


def test_no_imagery_writes_empty_in_imagery(tmp_path: Path) -> None:
    campaign = _campaign(tmp_path)
    campaign.imagery = []
    campaign.sites = [Site("siteA", 1.0, 2.0, 1, 0.5, None)]
    write_campaign(tmp_path / "c", campaign, [])
    assert (tmp_path / "c" / "sites.csv").read_text().splitlines()[1].endswith(",")
    assert load_campaign(tmp_path / "c").sites[0].in_imagery is None


def test_bad_folders_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no campaign.json"):
        load_campaign(tmp_path)
    assert not is_campaign(tmp_path)
    write_campaign(tmp_path / "c", _campaign(tmp_path), [])
    meta_path = tmp_path / "c" / "campaign.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(DatasetError, match="version 99"):
        load_campaign(tmp_path / "c")
    meta_path.write_text(json.dumps(meta))
    table = tmp_path / "c" / "recordings.csv"
    good = table.read_text()
    table.write_text(good.replace("2019-05-22T06:30:00Z", "yesterday"))
    with pytest.raises(DatasetError, match="row 2 is malformed") as err:
        load_campaign(tmp_path / "c")
    assert "\n" not in str(err.value)
    table.write_text(good)
    (tmp_path / "c" / "sites.csv").unlink()
    with pytest.raises(DatasetError, match="sites.csv: missing"):
        load_campaign(tmp_path / "c")


def test_recording_outside_the_root_is_refused(tmp_path: Path) -> None:
    campaign = _campaign(tmp_path)
    campaign.recordings_root = tmp_path / "elsewhere"
    with pytest.raises(ValueError, match="not under the recordings root"):
        write_campaign(tmp_path / "c", campaign, [])
