"""The pair table: anyone's own geotagged recordings with an aerial image each (torch-free).

A CSV with the columns ``id, longitude, latitude, image, audio`` and optionally ``date``,
``title``, ``license``, ``label`` and ``split`` (train/val/test); any other columns are kept out of
the way. ``image`` and ``audio`` are paths relative to the table's folder (absolute paths work too).
The demo world is written in this layout (``DIR/pairs.csv``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from engine.data.records import AUDIO_FILE, PairRecord, SkipReport, parse_float, valid_coordinates
from engine.errors import DatasetError

REQUIRED_COLUMNS = ("id", "longitude", "latitude", "image", "audio")
OPTIONAL_COLUMNS = ("date", "title", "license", "label", "split")
SPLITS = ("train", "val", "test")
TABLE_NAME = "pairs.csv"


def scan_pair_table(table: str | Path) -> tuple[list[PairRecord], SkipReport]:
    """Read a pair table and keep the rows whose files exist and whose coordinates are possible.

    Args:
        table: the CSV file (or a folder holding ``pairs.csv``).
    Returns:
        (records, skip report).
    Raises:
        DatasetError: no table, a missing column, an unknown value in the ``split`` column.
    """
    table = Path(table)
    if table.is_dir():
        table = table / TABLE_NAME
    if not table.is_file():
        raise DatasetError(table, "file not found", "give a pair table CSV (id, longitude, latitude, image, audio)")
    base = table.parent
    try:
        with open(table, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DatasetError(table, f"missing column(s) {', '.join(missing)}",
                                   f"a pair table needs the columns {', '.join(REQUIRED_COLUMNS)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(table, f"unreadable ({err})", "save it as a UTF-8 CSV") from None
    has_split = "split" in header
    report = SkipReport(len(rows))
    records: list[PairRecord] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        key = (row.get("id") or "").strip()
        if not key or key in seen:
            raise DatasetError(f"{table}:{line}", f"id {key!r} is empty or repeated", "give every row a unique id")
        seen.add(key)
        lon, lat = parse_float(row.get("longitude")), parse_float(row.get("latitude"))
        if not valid_coordinates(lon, lat):
            report.skip("bad coordinates", f"{table}:{line}: impossible coordinates lon {row.get('longitude')!r}, "
                        f"lat {row.get('latitude')!r}")
            continue
        split = (row.get("split") or "").strip().lower() if has_split else None
        if has_split and split not in SPLITS:
            raise DatasetError(f"{table}:{line}", f"split {row.get('split')!r} is not one of {', '.join(SPLITS)}",
                               "fix the split column or remove it (a spatially blocked split is drawn then)")
        image = base / (row.get("image") or "").strip()
        audio = base / (row.get("audio") or "").strip()
        if not (row.get("image") or "").strip() or not image.is_file():
            report.skip("missing image", f"{image}: missing")
            continue
        if not (row.get("audio") or "").strip() or not audio.is_file():
            report.skip("missing audio", f"{audio}: missing")
            continue
        number = int(key) if key.lstrip("-").isdigit() else None
        records.append(PairRecord(key=key, lon=lon, lat=lat, image=image, audio=audio, audio_kind=AUDIO_FILE,
                                  split=split, number=number, title=(row.get("title") or "").strip()))
    return records, report
