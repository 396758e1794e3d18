"""Which recordings to compute indices for, and the indices table (CSV + JSON companion) (torch-free).

Recordings come from the tables an atlas reads (:func:`engine.data.source.scan_recordings`: a pair
table, SoundingEarth), from a campaign folder (``engine.campaign``, imported only when one is given),
or from a plain folder of audio files. A recording's local start time comes from the campaign, else
from its file name (``S4A03895_20190522_060000.wav``, ``20190522_060000.WAV``: recorders write local
time there), else it is unknown; each window is placed at start + its offset.

Files written by :func:`write_indices_table` (atomically):

- ``OUT.csv``: one row per recording: ``id, path, title, longitude, latitude, start_local, hour,
  duration_s, sample_rate, windows, summary, note, skipped`` then one column per index
  (:data:`engine.ecology.indices.INDEX_NAMES`), each the mean (or median) over the windows. An
  undefined value is an empty cell, never 0.
- ``OUT_windows.csv``: one row per window: ``id, window, start_s, duration_s, start_local, hour, note``
  and the indices.
- ``OUT.json``: ``{"format": "soundscape-indices", "version": 1, "library": "scikit-maad X",
  "parameters": {...}, "window_s", "summary", "columns": {index: description}, "recordings",
  "computed", "skipped": [{"id", "path", "reason"}], "source", "created"}``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.audio.front_end import SUPPORTED_EXTENSIONS
from engine.ecology.indices import IndexParameters, RecordingIndices
from engine.ecology.names import DESCRIPTIONS, INDEX_NAMES
from engine.errors import DatasetError, UserInputError
from engine.files import atomic_write_text, json_safe

log = logging.getLogger(__name__)

INDICES_FORMAT = "soundscape-indices"
INDICES_VERSION = 1
_STAMP = re.compile(r"(?<!\d)(\d{8})[_T-]?(\d{6})(?!\d)")


@dataclass(frozen=True)
class RecordingItem:
    """A recording to analyse: its id, file, place (NaN when unknown) and local start (None when unknown)."""

    id: str
    path: Path
    lon: float = math.nan
    lat: float = math.nan
    title: str = ""
    start_local: dt.datetime | None = None


def start_from_name(path: str | Path) -> dt.datetime | None:
    """The local start time a recorder wrote into a file name (``..._YYYYMMDD_HHMMSS``), or None."""
    match = _STAMP.search(Path(path).stem)
    if not match:
        return None
    try:
        return dt.datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S")
    except ValueError:
        return None


def hour_of_day(start: dt.datetime | None, offset_s: float = 0.0) -> float:
    """Local hour of day (0 <= h < 24, fractional) of ``start + offset_s``; NaN when the start is unknown."""
    if start is None:
        return math.nan
    t = start + dt.timedelta(seconds=offset_s)
    return t.hour + t.minute / 60 + t.second / 3600


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
                  and not p.name.startswith("."))


def _campaign_items(path: Path) -> list[RecordingItem] | None:
    """The recordings of a campaign folder, or None when ``path`` is not one (or campaigns are not
    available in this version)."""
    try:
        from engine.campaign import is_campaign, load_campaign
    except ImportError:
        return None
    if not is_campaign(path):
        return None
    campaign = load_campaign(path)
    items = []
    for r in campaign.recordings:
        rel = r.path.relative_to(campaign.recordings_root).as_posix() if r.path.is_relative_to(
            campaign.recordings_root) else str(r.path)
        start = r.start_local.replace(tzinfo=None) if r.start_local is not None else None
        items.append(RecordingItem(id=rel, path=r.path, lon=r.lon, lat=r.lat, title=f"{r.site} {rel}",
                                   start_local=start))
    return items


def recordings_to_analyse(path: str | Path) -> tuple[list[RecordingItem], str, list[str]]:
    """The recordings of a table (pair table, SoundingEarth), a campaign folder, a folder of audio files or
    one audio file.

    Returns:
        (items, what the source is, one line per row skipped while reading it).
    Raises:
        DatasetError: nothing usable at ``path``.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, "not found", "name a pair table, a campaign folder or a folder of audio files")
    if path.is_file() and path.suffix.lower() in SUPPORTED_EXTENSIONS:
        return [RecordingItem(id=path.name, path=path, title=path.stem, start_local=start_from_name(path))], "file", []
    if path.is_dir():
        campaign = _campaign_items(path)
        if campaign is not None:
            return campaign, "campaign", []
    if path.is_dir() and not (path / "pairs.csv").is_file() and not (path / "metadata.csv").is_file():
        files = _audio_files(path)
        if not files:
            raise DatasetError(path, "holds no audio files (" + ", ".join(SUPPORTED_EXTENSIONS) + ")",
                               "name a folder of recordings, a pair table or a campaign folder")
        items = [RecordingItem(id=f.relative_to(path).as_posix(), path=f, title=f.stem, start_local=start_from_name(f))
                 for f in files]
        return items, "folder", []
    from engine.data.source import scan_recordings

    scan = scan_recordings(path)
    skipped = [m for reason in scan.report.examples for m in scan.report.examples[reason]]
    items = [RecordingItem(id=r.key, path=r.audio, lon=r.lon, lat=r.lat, title=r.title or r.key,
                           start_local=start_from_name(r.audio)) for r in scan.records]
    return items, scan.kind, skipped


def _cell(value: float) -> str:
    # an undefined value is an empty cell ("no value"), never 0
    return "" if value is None or not math.isfinite(value) else f"{value:.10g}"


@dataclass
class IndicesRow:
    """One analysed recording: its item and its indices (or the reason it was skipped)."""

    item: RecordingItem
    result: RecordingIndices | None
    skipped: str | None = None


RECORDING_COLUMNS = ["id", "path", "title", "longitude", "latitude", "start_local", "hour", "duration_s",
                     "sample_rate", "windows", "summary", "note", "skipped"]
WINDOW_COLUMNS = ["id", "window", "start_s", "duration_s", "start_local", "hour", "note"]


def _csv_text(header: list[str], rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def recording_row(row: IndicesRow, summary: str) -> dict[str, Any]:
    """The values of a recording's CSV row (floats NaN where undefined)."""
    item, result = row.item, row.result
    values = result.summary(summary) if result and result.windows else dict.fromkeys(INDEX_NAMES, math.nan)
    notes = sorted({w.note for w in result.windows if w.note}) if result else []
    return {"id": item.id, "path": str(item.path), "title": item.title, "longitude": item.lon,
            "latitude": item.lat, "start_local": item.start_local.isoformat() if item.start_local else "",
            "hour": hour_of_day(item.start_local), "duration_s": result.duration_s if result else math.nan,
            "sample_rate": result.sample_rate if result else "", "windows": len(result.windows) if result else 0,
            "summary": summary, "note": " ".join(notes),
            "skipped": row.skipped or (result.skipped if result else "") or "", **values}


def write_indices_table(out: str | Path, rows: list[IndicesRow], params: IndexParameters, window_s: float | None,
                        summary: str, source: str, library: str) -> dict[str, Any]:
    """Write ``OUT.csv``, ``OUT_windows.csv`` and ``OUT.json`` (see the module docstring); returns the JSON.

    Raises:
        UserInputError: the folder cannot be written (read-only, full): one line, nothing half-written.
    """
    out = Path(out)
    per_recording, per_window = [], []
    for row in rows:
        values = recording_row(row, summary)
        per_recording.append([_cell(v) if isinstance(v, float) else str(v)
                              for v in (values[c] for c in RECORDING_COLUMNS + list(INDEX_NAMES))])
        for k, w in enumerate(row.result.windows if row.result else []):
            start = (row.item.start_local + dt.timedelta(seconds=w.start_s)) if row.item.start_local else None
            per_window.append([row.item.id, str(k), _cell(w.start_s), _cell(w.duration_s),
                               start.isoformat() if start else "", _cell(hour_of_day(start)), w.note,
                               *(_cell(w.values[n]) for n in INDEX_NAMES)])
    skipped = [{"id": r.item.id, "path": str(r.item.path), "reason": r.skipped or r.result.skipped}
               for r in rows if r.skipped or (r.result and r.result.skipped)]
    meta = {"format": INDICES_FORMAT, "version": INDICES_VERSION, "library": library,
            "parameters": params.to_dict(), "window_s": window_s, "summary": summary,
            "columns": {n: DESCRIPTIONS[n] for n in INDEX_NAMES}, "recordings": len(rows),
            "computed": len(rows) - len(skipped), "skipped": skipped, "source": source,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": {"recordings": out.name, "windows": windows_path(out).name}}
    try:
        atomic_write_text(windows_path(out), _csv_text(WINDOW_COLUMNS + list(INDEX_NAMES), per_window))
        atomic_write_text(out, _csv_text(RECORDING_COLUMNS + list(INDEX_NAMES), per_recording))
        atomic_write_text(out.with_suffix(".json"), json.dumps(json_safe(meta), indent=1))
    except OSError as err:
        raise UserInputError(out, f"cannot be written ({err.strerror or type(err).__name__})",
                             "choose a writable folder with free space") from None
    return meta


def windows_path(out: Path) -> Path:
    return out.with_name(out.stem + "_windows.csv")


def read_indices_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of an indices CSV (either file) with numbers as floats (NaN for empty cells)."""
    numeric = set(INDEX_NAMES) | {"longitude", "latitude", "hour", "duration_s", "start_s"}
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: (float(v) if v else math.nan) if k in numeric else v for k, v in row.items()}
                for row in csv.DictReader(f)]


def analyse_recordings(items: list[RecordingItem], params: IndexParameters | None = None,
                       window_s: float | None = 60.0, job: Any = None) -> list[IndicesRow]:
    """Compute the indices of every item (:func:`engine.ecology.indices.recording_indices`), reporting
    progress to ``job`` (an :class:`engine.progress.Job`); an unreadable file is a skipped row with its
    one-line reason, never a stop."""
    from engine.ecology.indices import maad_version, recording_indices
    from engine.progress import Job

    maad_version()  # a clear error before any work when scikit-maad is missing
    params = params or IndexParameters()
    job = job or Job()
    rows = []
    for i, item in enumerate(items):
        job.check()
        try:
            result = recording_indices(item.path, params, window_s)
            rows.append(IndicesRow(item, result, result.skipped))
        except UserInputError as err:
            log.warning("skipped: %s", err)
            rows.append(IndicesRow(item, None, str(err)))
        job.report(i + 1, len(items), item.path.name)
    return rows
