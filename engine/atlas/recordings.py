"""Reading the recordings an atlas holds: a pair table or SoundingEarth's ``metadata.csv`` (torch-free).

A pair table is a CSV with ``id, longitude, latitude, image, audio`` (optional ``date, title, license,
label``), paths relative to the table. SoundingEarth's ``metadata.csv`` is recognised by its
``long_key`` and ``mp3name`` columns; its audio is ``raw_audio/<long_key>/<mp3name>`` beside it.
Rows with a missing file or impossible coordinates are skipped and counted, never fatal.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DatasetError

PAIR_COLUMNS = ("id", "longitude", "latitude", "audio")
SOUNDINGEARTH_COLUMNS = ("long_key", "longitude", "latitude", "mp3name")


@dataclass(frozen=True)
class RecordingRow:
    """One geotagged recording (and the image paired with it, when the table has one)."""

    id: str
    lon: float
    lat: float
    audio: Path
    title: str = ""
    image: Path | None = None
    split: str | None = None


@dataclass
class RecordingTable:
    """The usable rows of a table and what was skipped (one line each, naming the row and why)."""

    path: Path
    kind: str  # "pairs" or "soundingearth"
    rows: list[RecordingRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _coordinate(value: str, low: float, high: float) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and low <= x <= high else None


def read_recording_table(path: str | Path, require_files: bool = True) -> RecordingTable:
    """Read a pair table or SoundingEarth ``metadata.csv``.

    Args:
        path: the CSV file.
        require_files: skip rows whose audio file does not exist.

    Returns:
        The :class:`RecordingTable` (absolute paths).

    Raises:
        DatasetError: missing or unreadable table, or a column the format needs is absent.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise DatasetError(path, "recordings table not found", "name a pair table CSV or SoundingEarth metadata.csv")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            records = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(path, f"unreadable CSV ({type(err).__name__}: {err})",
                           "save it as UTF-8 CSV with a header row") from None
    kind = "soundingearth" if all(c in columns for c in ("long_key", "mp3name")) else "pairs"
    needed = SOUNDINGEARTH_COLUMNS if kind == "soundingearth" else PAIR_COLUMNS
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DatasetError(path, f"missing column(s) {missing}",
                           f"a pair table needs the columns {list(PAIR_COLUMNS)} (+ image)")
    table = RecordingTable(path=path, kind=kind)
    base = path.parent
    for line, rec in enumerate(records, start=2):
        lon = _coordinate(rec.get("longitude", ""), -180.0, 180.0)
        lat = _coordinate(rec.get("latitude", ""), -90.0, 90.0)
        if kind == "soundingearth":
            rid = rec["long_key"]
            audio = base / "raw_audio" / rid / rec["mp3name"] if rec["mp3name"] else None
            image = base / "images" / f"{rec.get('key', '')}.jpg" if rec.get("key") else None
            split = None
        else:
            rid = rec["id"]
            audio = base / rec["audio"] if rec["audio"] else None
            image = base / rec["image"] if rec.get("image") else None
            split = rec.get("split") or None
        label = rid or f"line {line}"
        if lon is None or lat is None:
            table.skipped.append(f"{path}:{line} ({label}): impossible coordinates "
                                 f"({rec.get('longitude')!r}, {rec.get('latitude')!r})")
            continue
        if audio is None or (require_files and not audio.is_file()):
            table.skipped.append(f"{path}:{line} ({label}): audio file missing ({audio})")
            continue
        table.rows.append(RecordingRow(id=rid, lon=lon, lat=lat, audio=audio.resolve(),
                                       title=rec.get("title", "") or rid, image=image, split=split))
    return table
