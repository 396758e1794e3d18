"""The pair table: anyone's own geotagged recordings with an aerial image each (torch-free).

A CSV with the columns ``id, longitude, latitude, image, audio`` and optionally ``date``,
``title``, ``license``, ``label`` and ``split`` (train/val/test); any other columns are kept out of
the way. ``image`` and ``audio`` are paths relative to the table's folder (absolute paths work too).
The demo world is written in this layout (``DIR/pairs.csv``), with a ``world.json`` beside it whose
``format`` is :data:`DEMO_WORLD_FORMAT`.

The same table also lists recordings for an atlas (``require_image=False``): then the ``image``
column may be absent or empty, and only the audio file has to exist.
"""

from __future__ import annotations

from pathlib import Path

from engine.data.records import (
    AUDIO_FILE,
    PairRecord,
    SkipReport,
    parse_float,
    read_csv_table,
    valid_coordinates,
)
from engine.data.splits import SPLIT_NAMES
from engine.errors import DatasetError

REQUIRED_COLUMNS = ("id", "longitude", "latitude", "image", "audio")
RECORDING_COLUMNS = ("id", "longitude", "latitude", "audio")
OPTIONAL_COLUMNS = ("date", "title", "license", "label", "split")
SPLITS = SPLIT_NAMES
TABLE_NAME = "pairs.csv"
WORLD_FILE = "world.json"
DEMO_WORLD_FORMAT = "soundscape-demo-world"


def scan_pair_table(table: str | Path, require_image: bool = True) -> tuple[list[PairRecord], SkipReport]:
    """Read a pair table and keep the rows whose files exist and whose coordinates are possible.

    Args:
        table: the CSV file (or a folder holding ``pairs.csv``).
        require_image: False to read the table as recordings only (an atlas): no ``image`` column is
            needed and a row without an image file is kept (its ``image`` is None when the cell is empty).
    Returns:
        (records, skip report).
    Raises:
        DatasetError: no table, a missing column, an empty or repeated id, an unknown value in the
        ``split`` column.
    """
    table = Path(table)
    if table.is_dir():
        table = table / TABLE_NAME
    needed = REQUIRED_COLUMNS if require_image else RECORDING_COLUMNS
    if not table.is_file():
        raise DatasetError(table, "file not found", f"give a pair table CSV ({', '.join(needed)})")
    base = table.parent
    header, rows = read_csv_table(table, needed, f"a pair table needs the columns {', '.join(needed)}",
                                  "save it as a UTF-8 CSV")
    has_split = "split" in header
    report = SkipReport(len(rows))
    records: list[PairRecord] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        key = (row.get("id") or "").strip()
        if not key or key in seen:
            raise DatasetError(f"{table}:{line}", f"id {key!r} is empty or repeated", "give every row a unique id")
        seen.add(key)
        where = f"{table}:{line} (id {key})"
        lon, lat = parse_float(row.get("longitude")), parse_float(row.get("latitude"))
        if not valid_coordinates(lon, lat):
            report.skip("bad coordinates", f"{where}: impossible coordinates lon {row.get('longitude')!r}, "
                        f"lat {row.get('latitude')!r}")
            continue
        split = (row.get("split") or "").strip().lower() if has_split else None
        if has_split and split not in SPLITS:
            raise DatasetError(f"{table}:{line}", f"split {row.get('split')!r} is not one of {', '.join(SPLITS)}",
                               "fix the split column or remove it (a spatially blocked split is drawn then)")
        image_cell, audio_cell = (row.get("image") or "").strip(), (row.get("audio") or "").strip()
        image = base / image_cell if image_cell else None
        if require_image and (image is None or not image.is_file()):
            report.skip("missing image", f"{where}: image {image or '(none given)'} missing")
            continue
        audio = base / audio_cell if audio_cell else None
        if audio is None or not audio.is_file():
            report.skip("missing audio", f"{where}: audio {audio or '(none given)'} missing")
            continue
        number = int(key) if key.lstrip("-").isdigit() else None
        records.append(PairRecord(key=key, lon=lon, lat=lat, image=image, audio=audio, audio_kind=AUDIO_FILE,
                                  split=split, number=number, title=(row.get("title") or "").strip()))
    return records, report
