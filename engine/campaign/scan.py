"""``scan_campaign``: walk a folder of recorder files and make the campaign table (torch-free).

The walk is a generator over ``os.scandir`` (one folder's entries in memory at a time) and each file is
read through its header only, so a campaign of 100,000 files streams in bounded memory; only the rows of
the table are kept. Every file is either a row or a skip with its reason. See ``engine.campaign.table`` for
what is written and NOTES/README for the layouts accepted.

Two recorders claiming one site at the same time (overlapping time spans at one site from different
recorders) are counted as a warning and both are kept: both are real audio of that place, and a user who
placed two recorders side by side on purpose would lose half the data if we dropped one.
"""

from __future__ import annotations

import logging
import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.campaign.footprints import inside_mask, read_footprints
from engine.campaign.recorders import AUDIO_SUFFIXES, UnreadableAudio, read_facts
from engine.campaign.sites import (
    FileRow,
    SiteRow,
    load_files_table,
    load_sites,
    parse_timezone,
    timezone_name,
)
from engine.campaign.table import Campaign, CampaignRecording, Site, is_campaign, write_campaign
from engine.errors import DatasetError
from engine.progress import Job

log = logging.getLogger(__name__)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no autonomous recorder in use wrote files before this
REPORT_EVERY = 100
# Folders a recorder or a copying habit makes inside a site's folder; they never name the site.
CARD_FOLDERS = {"data", "sd", "sdcard", "audio", "wav", "wavs", "recordings", "files", "card", "raw"}
REASONS = ("not audio", "unreadable", "sample rate below 8 kHz", "too short", "no time", "clock implausible",
           "no position", "duplicate")


@dataclass(frozen=True)
class ScanOptions:
    """What to scan. ``timezone`` applies where neither the sites table nor the file says one."""

    recordings: Path
    sites_table: Path | None = None
    files_table: Path | None = None
    imagery: tuple[Path, ...] = ()
    timezone: str | None = None
    min_seconds: float = 1.0
    min_sample_rate: int = 8000


@dataclass
class ScanResult:
    campaign: Campaign
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, Any]:
        return self.campaign.summary


def walk_files(root: Path, exclude: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Every file below ``root`` (any nesting, hidden entries skipped), folder by folder in name order."""
    excluded = {os.path.realpath(p) for p in exclude}
    seen = {os.path.realpath(root)}  # a folder linked into itself is walked once
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            log.warning("%s: cannot list the folder (%s); skipped", folder, err.strerror)
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=True):
                real = os.path.realpath(entry.path)
                if real not in excluded and real not in seen:
                    seen.add(real)
                    subfolders.append(entry.path)
            elif entry.is_file():
                yield Path(entry.path)
        stack.extend(reversed(subfolders))


def check_options(options: ScanOptions) -> tuple[list[SiteRow], dict[str, FileRow], list]:
    """Read and check every input before the walk, so bad input fails in one line before any work."""
    root = Path(options.recordings)
    if not root.is_dir():
        raise DatasetError(root, "not a folder", "give the folder that holds the recorder files (--recordings)")
    if options.timezone:
        parse_timezone(options.timezone, "--timezone")
    sites = load_sites(Path(options.sites_table), options.timezone) if options.sites_table else []
    files = load_files_table(Path(options.files_table)) if options.files_table else {}
    footprints = read_footprints([Path(p) for p in options.imagery])
    return sites, files, footprints


def scan_campaign(options: ScanOptions, job: Job | None = None, now: datetime | None = None,
                  exclude: tuple[Path, ...] = ()) -> ScanResult:
    """Scan ``options.recordings`` into a :class:`Campaign` (not written; see :func:`scan_to_folder`).

    Args:
        options: the folder, tables, imagery and time zone.
        job: progress (files seen so far; the total is unknown while streaming) and cancellation.
        now: the present, for "clock in the future" (default: the system clock).
        exclude: folders not to walk (e.g. the output folder inside the recordings).
    Raises:
        DatasetError, ConfigError, ImageFileError: bad input, one line, before any file is read.
        Cancelled: through ``job``.
    """
    job = job or Job()
    site_rows, file_rows, footprints = check_options(options)
    root = Path(options.recordings).resolve()
    latest = (now or datetime.now(UTC)) + timedelta(days=1)
    state = _State(sites=SiteIndex(site_rows, options.timezone))
    for n, path in enumerate(walk_files(root, exclude), start=1):
        rel = path.relative_to(root).as_posix()
        reason = _scan_one(path, rel, options, file_rows, latest, state)
        if reason:
            state.skipped.append((rel, reason))
        if n % REPORT_EVERY == 0:
            job.report(n, None, f"{len(state.recordings)} usable")
            job.check()
    job.report(state.seen, None, f"{len(state.recordings)} usable")
    return ScanResult(_assemble(options, root, site_rows, footprints, state), state.skipped)


def scan_to_folder(options: ScanOptions, out: Path, job: Job | None = None, now: datetime | None = None) -> ScanResult:
    """Scan and write the campaign folder ``out`` (a new folder, or a campaign folder to rewrite).

    Raises:
        DatasetError: ``out`` is a file or a non-empty folder that is not a campaign; and as
            :func:`scan_campaign`.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_campaign(out))):
        raise DatasetError(out, "exists and is not a campaign folder; refusing to write into it",
                           "name a new folder for --out")
    result = scan_campaign(options, job, now, exclude=(out,))
    result.campaign.root = out
    write_campaign(out, result.campaign, result.skipped)
    return result


@dataclass
class _State:
    sites: SiteIndex
    recordings: list[CampaignRecording] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seen: int = 0
    keys: set = field(default_factory=set)
    same_name_size: dict = field(default_factory=dict)  # (name, size) -> [[path, digest or None], ...]
    naive_as_utc: Counter = field(default_factory=Counter)
    details: dict = field(default_factory=dict)  # recorder -> what its files say about it (gain, battery ...)


def _scan_one(path: Path, rel: str, options: ScanOptions, file_rows: dict[str, FileRow], latest: datetime,
              state: _State) -> str | None:
    """Add one file's row to ``state``, or return why it is skipped."""
    state.seen += 1
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        return "not audio"
    try:
        facts = read_facts(path)
    except UnreadableAudio as err:
        log.debug("%s: unreadable (%s)", path, err)
        return "unreadable"
    if facts.sample_rate < options.min_sample_rate:
        return "sample rate below 8 kHz"
    if facts.duration_s < options.min_seconds:
        return "too short"
    if facts.start is None:
        return "no time"
    folders = rel.split("/")[:-1]
    site_row = state.sites.match(folders, facts.recorder, facts.prefix, facts.start)
    file_row = file_rows.get(rel) or file_rows.get(path.name)
    tz_text = (site_row.timezone if site_row else None) or (file_row.timezone if file_row else None) \
        or options.timezone
    tz = parse_timezone(tz_text, "--timezone") if tz_text else None

    start = facts.start
    if start.tzinfo is None:  # the recorder's local time (Song Meter names, GUANO without an offset)
        if tz is None:
            state.naive_as_utc[folders[0] if folders else "."] += 1
        # A local time in the hour repeated when clocks go back is read as the first of the two (fold=0).
        start = start.replace(tzinfo=tz or UTC)
    start_utc = start.astimezone(UTC)
    if not EARLIEST <= start_utc <= latest:
        return "clock implausible"
    if tz is not None:
        start_local, tz_name = start_utc.astimezone(tz), timezone_name(tz, start_utc)
    else:
        start_local = start
        tz_name = "UTC" if start.utcoffset() == timedelta(0) else timezone_name(start.tzinfo, start)

    fallback_site = _site_from_folders(folders) or facts.recorder or path.stem
    if facts.lon is not None and facts.lat is not None:
        lon, lat, source = facts.lon, facts.lat, "guano"
        site = site_row.site if site_row else (file_row.site if file_row and file_row.site else fallback_site)
    elif site_row:
        lon, lat, source, site = site_row.lon, site_row.lat, "sites", site_row.site
    elif file_row:
        lon, lat, source = file_row.lon, file_row.lat, "files"
        site = file_row.site or fallback_site
    else:
        return "no position"

    recorder = facts.recorder or ("/".join(folders) if folders else "unknown")  # a folder is one card
    if (recorder, start_utc) in state.keys or _is_copy(path, state):
        return "duplicate"
    state.keys.add((recorder, start_utc))
    if facts.details:
        _note_details(state.details.setdefault(recorder, {"model": facts.recorder_model, "files": 0}), facts.details)
    state.recordings.append(CampaignRecording(
        path=path, site=site, recorder=recorder, recorder_model=facts.recorder_model, lon=lon, lat=lat,
        position_source=source, start_utc=start_utc, start_local=start_local, timezone=tz_name,
        duration_s=facts.duration_s, sample_rate=facts.sample_rate, channels=facts.channels))
    return None


def _site_from_folders(folders: list[str]) -> str | None:
    """The nearest folder that names a place, not a card's own folder (Data, SD, Audio ...)."""
    for name in reversed(folders):
        if name.lower() not in CARD_FOLDERS:
            return name
    return None


def _is_copy(path: Path, state: _State) -> bool:
    """Whether ``path`` is a byte copy of a file already kept (a backup folder scanned with the cards).

    Files of one name and size are common (recorders on one schedule write 20190522_063000.WAV at every
    site), so those are told apart by their first 4 KB (the header, with any comment or GUANO before the
    data) and 4 KB from the middle of the audio; nothing else is read.
    """
    key = (path.name.lower(), path.stat().st_size)
    earlier = state.same_name_size.setdefault(key, [])
    if earlier:
        mine = _middle_digest(path, key[1])
        for entry in earlier:
            if entry[1] is None:
                entry[1] = _middle_digest(entry[0], key[1])
            if entry[1] == mine:
                return True
        earlier.append([path, mine])
    else:
        earlier.append([path, None])
    return False


def _middle_digest(path: Path, size: int) -> bytes:
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        digest.update(f.read(4096))
        f.seek(max(0, size // 2 - 2048))
        digest.update(f.read(4096))
    return digest.digest()


def _note_details(entry: dict[str, Any], details: tuple[tuple[str, Any], ...]) -> None:
    """Per recorder: the number of files with metadata, text values as seen, numbers as [min, max]."""
    entry["files"] += 1
    for key, value in details:
        if value is None or value == "":
            continue
        if isinstance(value, int | float):
            low, high = entry.get(key, [value, value])
            entry[key] = [min(low, value), max(high, value)]
        else:
            entry[key] = value


class SiteIndex:
    """The sites table indexed by site name and recorder (lower case), so matching a file is a few dict
    look-ups, not a pass over every row (100,000 files x hundreds of sites)."""

    def __init__(self, rows: list[SiteRow], default_tz: str | None) -> None:
        self.by_name: dict[str, list[SiteRow]] = defaultdict(list)
        self.by_recorder: dict[str, list[SiteRow]] = defaultdict(list)
        for row in rows:
            self.by_name[row.site.lower()].append(row)
            if row.recorder:
                self.by_recorder[row.recorder.lower()].append(row)
        self.default_tz = default_tz

    def match(self, folders: list[str], recorder: str | None, prefix: str | None, start: datetime) -> SiteRow | None:
        """The row for a file: by folder name (the nearest folder first), then recorder serial or file prefix
        (or a folder named like the recorder), then a site named like the serial or prefix; rows with
        start/end only while the file's time falls inside them."""
        if not self.by_name:
            return None
        ids = [k.lower() for k in (recorder, prefix) if k]
        lowered = [f.lower() for f in reversed(folders)]
        tiers = [self.by_name.get(f, []) for f in lowered]
        tiers.append([r for k in ids + lowered for r in self.by_recorder.get(k, [])])
        tiers.append([r for k in ids for r in self.by_name.get(k, [])])
        for tier in tiers:
            for row in tier:
                if self._in_window(row, start):
                    return row
        return None

    def _in_window(self, row: SiteRow, start: datetime) -> bool:
        if not (row.start or row.end):
            return True
        moment = start
        if moment.tzinfo is None:
            tz_text = row.timezone or self.default_tz
            moment = moment.replace(tzinfo=parse_timezone(tz_text, "--timezone") if tz_text else UTC)
        return not ((row.start and moment < row.start) or (row.end and moment >= row.end))


def _assemble(options: ScanOptions, root: Path, site_rows: list[SiteRow], footprints: list,
              state: _State) -> Campaign:
    by_site: dict[str, list[CampaignRecording]] = defaultdict(list)
    for rec in state.recordings:
        by_site[rec.site].append(rec)
    table_pos = {r.site: (r.lon, r.lat) for r in site_rows}
    names = sorted(by_site)
    positions = [table_pos.get(s) or (statistics.median(r.lon for r in by_site[s]),
                                      statistics.median(r.lat for r in by_site[s])) for s in names]
    inside: list[bool | None] = [None] * len(names)
    warnings: list[str] = []
    if footprints:
        inside = [False] * len(names)
        for fp in footprints:
            mask = inside_mask(fp, [p[0] for p in positions], [p[1] for p in positions])
            inside = [a or b for a, b in zip(inside, mask, strict=True)]
            if names and not any(mask):
                warnings.append(f"{fp.path}: covers none of the {len(names)} sites (footprint in {fp.crs}); "
                                f"check the image's CRS and the sites' coordinates (WGS 84 longitude, latitude)")
    sites = [Site(s, pos[0], pos[1], len(by_site[s]), sum(r.duration_s for r in by_site[s]) / 3600, flag)
             for s, pos, flag in zip(names, positions, inside, strict=True)]

    empty = sorted({r.site for r in site_rows} - set(by_site))
    if empty:
        warnings.append(f"{options.sites_table}: {len(empty)} site(s) without any usable file: "
                        f"{', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}; check the folder names "
                        f"or recorder serials in the table")
    overlaps = _overlaps(by_site)
    for site, pairs in overlaps.items():
        warnings.append(f"site {site}: {pairs} pair(s) of files from different recorders overlap in time "
                        f"(two recorders claiming one site at once); both kept")
    for folder, count in state.naive_as_utc.items():
        warnings.append(f"{root / folder}: {count} file(s) in recorder local time without a time zone were taken "
                        f"as UTC; give --timezone or a timezone column in the sites table")
    for w in warnings:  # the summary carries them to the user (CLI, app); here only for a debug log
        log.debug("%s", w)

    reasons = Counter(reason for _, reason in state.skipped)
    per_hour = [0] * 24
    per_date: Counter = Counter()
    for rec in state.recordings:
        per_hour[rec.start_local.hour] += 1
        per_date[rec.start_local.date().isoformat()] += 1
    summary = {
        "files": state.seen, "usable": len(state.recordings), "skipped": len(state.skipped), "sites": len(sites),
        "hours": sum(s.hours for s in sites), "hours_per_site": {s.name: s.hours for s in sites},
        "per_hour_of_day": per_hour, "per_date": dict(sorted(per_date.items())),
        "outside_imagery": [s.name for s in sites if s.in_imagery is False],
        "skipped_by_reason": {r: reasons[r] for r in REASONS if reasons[r]} | {
            r: n for r, n in reasons.items() if r not in REASONS},
        "recorders": len({r.recorder for r in state.recordings}),
        "sites_without_files": empty, "overlapping_recorders": overlaps, "warnings": warnings,
        "recorder_details": dict(sorted(state.details.items())),
        "first_utc": min((r.start_utc for r in state.recordings), default=None),
        "last_utc": max((r.start_utc for r in state.recordings), default=None),
    }
    for key in ("first_utc", "last_utc"):
        summary[key] = summary[key].isoformat().replace("+00:00", "Z") if summary[key] else None
    return Campaign(root=root, recordings_root=root, imagery=[fp.path for fp in footprints],
                    timezone=options.timezone, recordings=state.recordings, sites=sites, summary=summary,
                    sites_table=options.sites_table)


def _overlaps(by_site: dict[str, list[CampaignRecording]]) -> dict[str, int]:
    """Per site, how many pairs of files from different recorders overlap in time (a sweep over starts)."""
    out = {}
    for site, recs in by_site.items():
        pairs = 0
        active: list[tuple[datetime, str]] = []  # (end, recorder) of files still running
        for rec in sorted(recs, key=lambda r: r.start_utc):
            active = [(end, who) for end, who in active if end > rec.start_utc]
            pairs += sum(who != rec.recorder for _, who in active)
            active.append((rec.start_utc + timedelta(seconds=rec.duration_s), rec.recorder))
        if pairs:
            out[site] = pairs
    return out
