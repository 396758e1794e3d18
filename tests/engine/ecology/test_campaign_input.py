"""A campaign folder is accepted as input of the indices, through engine.campaign's contract
(/work/wt/CAMPAIGN-FORMAT.md: is_campaign, load_campaign). The campaign module is written on another
branch; this test stands in a minimal module with exactly that contract's API."""

from __future__ import annotations

import datetime as dt
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.ecology.table import hour_of_day, recordings_to_analyse


@dataclass(frozen=True)
class _Recording:  # engine.campaign.CampaignRecording's fields
    path: Path
    site: str
    recorder: str
    recorder_model: str
    lon: float
    lat: float
    position_source: str
    start_utc: dt.datetime
    start_local: dt.datetime
    timezone: str
    duration_s: float
    sample_rate: int
    channels: int


@dataclass
class _Campaign:
    root: Path
    recordings_root: Path
    imagery: list
    timezone: str | None
    recordings: list
    sites: list
    summary: dict


def _stand_in(root: Path, audio: list[Path]) -> types.ModuleType:
    module = types.ModuleType("engine.campaign")
    tz = dt.timezone(dt.timedelta(hours=2))

    def is_campaign(path: Path) -> bool:
        f = Path(path) / "campaign.json"
        return f.is_file() and json.loads(f.read_text()).get("format") == "soundscape-campaign"

    def load_campaign(path: Path) -> _Campaign:
        recs = [_Recording(path=a, site=f"site{i}", recorder="S4A03895", recorder_model="song-meter", lon=10.0 + i,
                           lat=50.0, position_source="sites",
                           start_utc=dt.datetime(2019, 5, 22, 6 + i, 30, tzinfo=dt.UTC),
                           start_local=dt.datetime(2019, 5, 22, 8 + i, 30, tzinfo=tz), timezone="+02:00",
                           duration_s=10.0, sample_rate=22000, channels=1) for i, a in enumerate(audio)]
        return _Campaign(root=Path(path), recordings_root=audio[0].parent, imagery=[], timezone="+02:00",
                         recordings=recs, sites=[], summary={})

    module.is_campaign, module.load_campaign = is_campaign, load_campaign
    return module


def test_a_campaign_folder_gives_its_recordings_with_their_local_times(tmp_path: Path, real_audio: list[Path],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    campaign = tmp_path / "campaign"
    campaign.mkdir()
    (campaign / "campaign.json").write_text(json.dumps({"format": "soundscape-campaign", "version": 1}))
    monkeypatch.setitem(sys.modules, "engine.campaign", _stand_in(campaign, real_audio[:2]))
    items, kind, skipped = recordings_to_analyse(campaign)
    assert kind == "campaign" and skipped == [] and [i.path for i in items] == real_audio[:2]
    assert [i.id for i in items] == [a.name for a in real_audio[:2]] and items[1].lon == 11.0
    # the campaign's local time wins over the file name's (00:00 and 02:00 in the names)
    assert [hour_of_day(i.start_local) for i in items] == [8.5, 9.5]
    # a plain folder is still read as files, timed by their names
    monkeypatch.setitem(sys.modules, "engine.campaign", _stand_in(campaign, real_audio[:2]))
    items, kind, _ = recordings_to_analyse(real_audio[0].parent)
    assert kind == "folder" and hour_of_day(items[0].start_local) == 0.0
