"""STAND-IN for branch campaign-scan's reader/writer of the campaign folder (CAMPAIGN-FORMAT.md).

Only what branch campaign-train needs to run its tests until campaign-scan's module lands; replace with theirs.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.errors import DatasetError

FORMAT, VERSION = "soundscape-campaign", 1
REC_COLUMNS = ["path", "site", "recorder", "recorder_model", "longitude", "latitude", "position_source",
               "start_utc", "start_local", "timezone", "duration_s", "sample_rate", "channels"]


@dataclass(frozen=True)
class CampaignRecording:
    path: Path
    site: str
    recorder: str
    recorder_model: str
    lon: float
    lat: float
    position_source: str
    start_utc: datetime
    start_local: datetime
    timezone: str
    duration_s: float
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class Site:
    name: str
    lon: float
    lat: float
    files: int
    hours: float
    in_imagery: bool | None


@dataclass
class Campaign:
    root: Path
    recordings_root: Path
    imagery: list[Path]
    timezone: str | None
    recordings: list[CampaignRecording]
    sites: list[Site]
    summary: dict[str, Any]

    def by_site(self) -> dict[str, list[CampaignRecording]]:
        out: dict[str, list[CampaignRecording]] = {}
        for r in self.recordings:
            out.setdefault(r.site, []).append(r)
        return out


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def is_campaign(path: Path) -> bool:
    path = Path(path)
    meta = path / "campaign.json" if path.is_dir() else path
    try:
        return meta.name == "campaign.json" and json.loads(meta.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def load_campaign(path: Path) -> Campaign:
    path = Path(path)
    root = path if path.is_dir() else path.parent
    if not is_campaign(root):
        raise DatasetError(root, "is not a campaign folder", "make one with 'campaign scan --out'")
    meta = json.loads((root / "campaign.json").read_text())
    if meta.get("version") != VERSION:
        raise DatasetError(root / "campaign.json", f"version {meta.get('version')}", "rescan")
    rec_root = Path(meta["recordings_root"])
    recs = []
    with open(root / "recordings.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            recs.append(CampaignRecording(
                rec_root / row["path"], row["site"], row["recorder"], row["recorder_model"],
                float(row["longitude"]), float(row["latitude"]), row["position_source"], _iso(row["start_utc"]),
                _iso(row["start_local"]), row["timezone"], float(row["duration_s"]), int(row["sample_rate"]),
                int(row["channels"])))
    sites = []
    with open(root / "sites.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            flag = row.get("in_imagery", "")
            sites.append(Site(row["site"], float(row["longitude"]), float(row["latitude"]), int(row["files"]),
                              float(row["hours"]), None if flag == "" else flag == "true"))
    return Campaign(root, rec_root, [Path(p) for p in meta.get("imagery", [])], meta.get("timezone"), recs, sites,
                    meta.get("summary", {}))


def write_campaign(out: Path, campaign: Campaign, skipped: list[tuple[str, str]]) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "campaign.json").write_text(json.dumps({
        "format": FORMAT, "version": VERSION, "recordings_root": str(campaign.recordings_root),
        "sites_table": None, "imagery": [str(p) for p in campaign.imagery], "timezone": campaign.timezone,
        "created": "2026-12-04T21:00:00Z", "summary": campaign.summary}))
    with open(out / "recordings.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(REC_COLUMNS)
        for r in campaign.recordings:
            w.writerow([r.path.relative_to(campaign.recordings_root).as_posix(), r.site, r.recorder,
                        r.recorder_model, r.lon, r.lat, r.position_source,
                        r.start_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), r.start_local.isoformat(), r.timezone,
                        r.duration_s, r.sample_rate, r.channels])
    with open(out / "sites.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["site", "longitude", "latitude", "files", "hours", "in_imagery"])
        for s in campaign.sites:
            w.writerow([s.name, s.lon, s.lat, s.files, s.hours,
                        "" if s.in_imagery is None else str(s.in_imagery).lower()])
    with open(out / "skipped.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "reason"])
        w.writerows(skipped)
