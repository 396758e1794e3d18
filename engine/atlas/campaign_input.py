"""A campaign folder (``soundscape-engine campaign scan --out CAMPAIGN``) as recordings of an atlas
(torch-free). Each usable recorder file becomes one recording, embedded whole by the front-end's chunk
rule like any other; its site, recorder and start time (UTC and local) go into the atlas's meta.jsonl
(see :mod:`engine.atlas.times`). Files the scan skipped stay out (listed in CAMPAIGN/skipped.csv)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.atlas.times import campaign_id, campaign_time_meta
from engine.data.records import PairRecord, SkipReport


@dataclass
class CampaignRecordingScan:
    """The recordings of a campaign, shaped like :class:`engine.data.source.RecordingScan`, plus
    ``extras``: each record's site and time keys for meta.jsonl."""

    table: Path  # CAMPAIGN/recordings.csv (its size and mtime tell a changed campaign on resume)
    layout: str
    records: list[PairRecord]
    report: SkipReport
    extras: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "campaign"


def is_campaign_folder(path: str | Path) -> bool:
    """True for a campaign folder or its campaign.json (False when campaigns are not available)."""
    try:
        from engine.campaign import is_campaign
    except ImportError:
        return False
    path = Path(path)
    return is_campaign(path.parent if path.name == "campaign.json" else path)


def scan_campaign_recordings(path: str | Path) -> CampaignRecordingScan:
    """The campaign's usable recordings in its table's order.

    Raises:
        DatasetError: not a readable campaign folder (one line, from :func:`engine.campaign.load_campaign`).
    """
    from engine.campaign import load_campaign

    campaign = load_campaign(path)
    records, extras = [], []
    for r in campaign.recordings:
        key = campaign_id(r, campaign.recordings_root)
        records.append(PairRecord(key=key, lon=float(r.lon), lat=float(r.lat), image=None, audio=Path(r.path),
                                  title=f"{r.site} {Path(r.path).name}"))
        extras.append(campaign_time_meta(r))
    report = SkipReport(rows=len(records))
    return CampaignRecordingScan(table=Path(campaign.root) / "recordings.csv", layout="campaign",
                                 records=records, report=report, extras=extras)
