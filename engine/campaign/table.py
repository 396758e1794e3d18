"""The campaign folder: one table of recorder files with sites, positions and times (torch-free).

Written by ``soundscape-engine campaign scan --out CAMPAIGN``; read by training, evaluation, the atlas and
the app through :func:`load_campaign`. The layout (see CAMPAIGN-FORMAT.md)::

    CAMPAIGN/campaign.json   format, version, recordings_root, sites_table, imagery, timezone, created, summary
    CAMPAIGN/recordings.csv  one row per usable file (paths relative to recordings_root, '/'-separated)
    CAMPAIGN/sites.csv       site, longitude, latitude, files, hours, in_imagery ('true'/'false'/'' = no imagery)
    CAMPAIGN/skipped.csv     path, reason

campaign.json is written last, so a folder that :func:`is_campaign` accepts has all its tables.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import DatasetError
from engine.files import atomic_write_text, json_safe

log = logging.getLogger(__name__)

FORMAT = "soundscape-campaign"
VERSION = 1
RECORDING_COLUMNS = ["path", "site", "recorder", "recorder_model", "longitude", "latitude", "position_source",
                     "start_utc", "start_local", "timezone", "duration_s", "sample_rate", "channels"]
SITE_COLUMNS = ["site", "longitude", "latitude", "files", "hours", "in_imagery"]
SKIPPED_COLUMNS = ["path", "reason"]
RECORDER_MODELS = ("audiomoth", "song-meter", "guano", "unknown")
POSITION_SOURCES = ("guano", "sites", "files")


@dataclass(frozen=True)
class CampaignRecording:
    """One usable recorder file: where and when it was recorded, and its audio format."""

    path: Path  # absolute
    site: str
    recorder: str
    recorder_model: str  # one of RECORDER_MODELS
    lon: float
    lat: float
    position_source: str  # one of POSITION_SOURCES
    start_utc: datetime  # tz-aware, UTC
    start_local: datetime  # tz-aware, the site's local time
    timezone: str  # IANA name, or a fixed offset like '+02:00'
    duration_s: float
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class Site:
    """A recording site; ``in_imagery`` is None when the campaign has no imagery."""

    name: str
    lon: float
    lat: float
    files: int
    hours: float
    in_imagery: bool | None


@dataclass
class Campaign:
    """A scanned campaign. ``root`` is the CAMPAIGN folder (where it was loaded from or will be written)."""

    root: Path
    recordings_root: Path
    imagery: list[Path]
    timezone: str | None
    recordings: list[CampaignRecording]
    sites: list[Site]
    summary: dict[str, Any]
    # Additions to the contract (defaulted, so constructing a Campaign without them still works):
    sites_table: Path | None = None
    created: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other campaign.json keys, kept on a rewrite

    def by_site(self) -> dict[str, list[CampaignRecording]]:
        """Recordings grouped by site name, each list in start time order; sites in table order."""
        groups: dict[str, list[CampaignRecording]] = {site.name: [] for site in self.sites}
        for rec in self.recordings:
            groups.setdefault(rec.site, []).append(rec)
        for recs in groups.values():
            recs.sort(key=lambda r: (r.start_utc, str(r.path)))
        return groups


def format_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a 'Z' (e.g. 2019-05-22T06:30:00Z)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: campaign times must be tz-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def format_local(moment: datetime) -> str:
    """ISO 8601 with the local offset (e.g. 2019-05-22T08:30:00+02:00)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: campaign times must be tz-aware")
    return moment.isoformat()


def is_campaign(path: str | Path) -> bool:
    """True for a folder (or its campaign.json) holding a campaign.json of this format."""
    path = Path(path)
    meta = path if path.name == "campaign.json" else path / "campaign.json"
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def write_campaign(out: str | Path, campaign: Campaign, skipped: list[tuple[str, str]]) -> None:
    """Write the campaign folder ``out`` (each file atomically; campaign.json last).

    Args:
        out: the CAMPAIGN folder (created).
        campaign: what to write; ``campaign.summary`` is written as given.
        skipped: (path, reason) of every skipped file; paths as the scan reports them.
    Raises:
        ValueError: a recording outside ``recordings_root`` or with a naive time (a bug in the caller).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(campaign.recordings_root).resolve()

    rows = []
    for rec in campaign.recordings:
        rel = _relative(Path(rec.path), root)
        rows.append([rel, rec.site, rec.recorder, rec.recorder_model, repr(float(rec.lon)), repr(float(rec.lat)),
                     rec.position_source, format_utc(rec.start_utc), format_local(rec.start_local), rec.timezone,
                     repr(float(rec.duration_s)), str(int(rec.sample_rate)), str(int(rec.channels))])
    atomic_write_text(out / "recordings.csv", _csv_text(RECORDING_COLUMNS, rows))

    site_rows = [[s.name, repr(float(s.lon)), repr(float(s.lat)), str(int(s.files)), repr(float(s.hours)),
                  "" if s.in_imagery is None else ("true" if s.in_imagery else "false")] for s in campaign.sites]
    atomic_write_text(out / "sites.csv", _csv_text(SITE_COLUMNS, site_rows))
    atomic_write_text(out / "skipped.csv", _csv_text(SKIPPED_COLUMNS, [[str(p), r] for p, r in skipped]))

    meta = {**campaign.extra,
            "format": FORMAT, "version": VERSION, "recordings_root": str(root),
            "sites_table": str(Path(campaign.sites_table).resolve()) if campaign.sites_table else None,
            "imagery": [str(Path(p).resolve()) for p in campaign.imagery],
            "timezone": campaign.timezone,
            "created": campaign.created or format_utc(datetime.now(UTC).replace(microsecond=0)),
            "summary": json_safe(campaign.summary)}
    atomic_write_text(out / "campaign.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def load_campaign(path: str | Path) -> Campaign:
    """Read a campaign folder (or its campaign.json).

    Raises:
        DatasetError: a missing folder or table, another format or version, or a malformed row (one line,
            naming the file and row).
    """
    path = Path(path)
    folder = path.parent if path.name == "campaign.json" else path
    meta_path = folder / "campaign.json"
    fix = "point to a folder written by `soundscape-engine campaign scan --out`"
    if not meta_path.is_file():
        raise DatasetError(folder, "not a campaign folder (no campaign.json)", fix)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DatasetError(meta_path, f"unreadable ({err})", "scan the recordings again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DatasetError(meta_path, f"not a {FORMAT} file", fix)
    if meta.get("version") != VERSION:
        raise DatasetError(meta_path, f"campaign version {meta.get('version')!r}; this program reads version "
                           f"{VERSION}", "scan the recordings again with this version")
    try:
        recordings_root = Path(meta["recordings_root"])
    except (KeyError, TypeError):
        raise DatasetError(meta_path, "no recordings_root", "scan the recordings again") from None

    recordings = [_recording(row, recordings_root, folder / "recordings.csv", n)
                  for n, row in _read_rows(folder / "recordings.csv", RECORDING_COLUMNS)]
    sites = [_site(row, folder / "sites.csv", n) for n, row in _read_rows(folder / "sites.csv", SITE_COLUMNS)]
    known = {"format", "version", "recordings_root", "sites_table", "imagery", "timezone", "created", "summary"}
    return Campaign(root=folder, recordings_root=recordings_root,
                    imagery=[Path(p) for p in meta.get("imagery") or []], timezone=meta.get("timezone"),
                    recordings=recordings, sites=sites, summary=meta.get("summary") or {},
                    sites_table=Path(meta["sites_table"]) if meta.get("sites_table") else None,
                    created=meta.get("created"), extra={k: v for k, v in meta.items() if k not in known})


def load_skipped(path: str | Path) -> list[tuple[str, str]]:
    """The (path, reason) rows of a campaign's skipped.csv."""
    folder = Path(path)
    folder = folder.parent if folder.name == "campaign.json" else folder
    return [(row["path"], row["reason"]) for _, row in _read_rows(folder / "skipped.csv", SKIPPED_COLUMNS)]


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root``, '/'-separated; through symbolic links as walked, else resolved."""
    for candidate in (path.absolute(), path.resolve()):
        try:
            return candidate.relative_to(root).as_posix()
        except ValueError:
            continue
    raise ValueError(f"{path} is not under the recordings root {root}")


def _csv_text(columns: list[str], rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def _read_rows(path: Path, columns: list[str]) -> Iterable[tuple[int, dict[str, str]]]:
    """(row number counting the header as row 1, row) of a campaign table, after checking its header."""
    if not path.is_file():
        raise DatasetError(path, "missing", "scan the recordings again (campaign scan --out)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(path, f"missing column(s) {', '.join(missing)}", "scan the recordings again")
        rows = list(reader)
    return ((n, row) for n, row in enumerate(rows, start=2))


def _recording(row: dict[str, str], recordings_root: Path, table: Path, n: int) -> CampaignRecording:
    try:
        start_utc = datetime.fromisoformat(row["start_utc"])
        start_local = datetime.fromisoformat(row["start_local"])
        if start_utc.tzinfo is None or start_local.tzinfo is None:
            raise ValueError("times without a UTC offset")
        return CampaignRecording(
            path=recordings_root / row["path"], site=row["site"], recorder=row["recorder"],
            recorder_model=row["recorder_model"], lon=float(row["longitude"]), lat=float(row["latitude"]),
            position_source=row["position_source"], start_utc=start_utc.astimezone(UTC),
            start_local=start_local, timezone=row["timezone"], duration_s=float(row["duration_s"]),
            sample_rate=int(row["sample_rate"]), channels=int(row["channels"]))
    except (TypeError, ValueError) as err:
        raise DatasetError(table, f"row {n} is malformed ({err})", "scan the recordings again") from None


def _site(row: dict[str, str], table: Path, n: int) -> Site:
    flag = row["in_imagery"].strip().lower()
    try:
        return Site(name=row["site"], lon=float(row["longitude"]), lat=float(row["latitude"]),
                    files=int(row["files"]), hours=float(row["hours"]),
                    in_imagery=None if flag == "" else flag == "true")
    except (TypeError, ValueError) as err:
        raise DatasetError(table, f"row {n} is malformed ({err})", "scan the recordings again") from None
