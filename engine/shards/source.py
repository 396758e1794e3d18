"""The rows of a SoundingEarth folder that ``prepare`` reads (torch-free).

A minimal listing of ``metadata.csv`` + ``images/<key>.jpg`` + ``spectrograms/<key>.jpg`` and the decoding
of the 8-bit spectrogram encoding. The engine's full dataset reader (issue 3) replaces this listing once it
is on main; the cache only needs keys, coordinates, the split and the two file paths.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import DatasetError

REQUIRED_COLUMNS = ("long_key", "key", "longitude", "latitude")
# The 8-bit spectrogram JPEGs store v = exp(x / 10) for x clipped to [-15, +5], linearly in 0..255.
_V_LOW = math.exp(-1.5)
_V_HIGH = math.exp(0.5)


@dataclass(frozen=True)
class SourceRecord:
    key: str
    long_key: str
    lon: float
    lat: float
    split: str
    image: Path
    spectrogram: Path


@dataclass
class SourceScan:
    records: list[SourceRecord]
    skipped: Counter[str] = field(default_factory=Counter)
    rows: int = 0


def paper_split(key: int) -> str:
    """The paper's split: ``key % 10`` in {2, 5} is test, 7 is validation, the rest train."""
    rest = key % 10
    return "test" if rest in (2, 5) else "val" if rest == 7 else "train"


def check_soundingearth(data_dir: str | Path) -> Path:
    """Check the folder and the header of ``metadata.csv`` (quick). Returns the metadata path.

    Raises:
        DatasetError: the folder or ``metadata.csv`` is missing, or a required column is absent.
    """
    root = Path(data_dir)
    meta = root / "metadata.csv"
    if not root.is_dir():
        raise DatasetError(root, "data folder not found", "give the SoundingEarth folder (with metadata.csv)")
    if not meta.is_file():
        raise DatasetError(meta, "missing", "give the SoundingEarth folder that holds metadata.csv, "
                           "images/ and spectrograms/")
    with open(meta, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DatasetError(meta, f"missing column(s) {missing}", "use the metadata.csv of SoundingEarth")
    return meta


def scan_soundingearth(data_dir: str | Path) -> SourceScan:
    """List the usable rows of a SoundingEarth folder.

    Rows without an image or spectrogram file, or with impossible coordinates, are skipped and counted.

    Raises:
        DatasetError: the folder or ``metadata.csv`` is missing, or a required column is absent.
    """
    root = Path(data_dir)
    meta = check_soundingearth(root)
    scan = SourceScan([])
    with open(meta, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        images = {p.name for p in (root / "images").glob("*.jpg")}
        spectrograms = {p.name for p in (root / "spectrograms").glob("*.jpg")}
        for row in reader:
            scan.rows += 1
            try:
                key = int(row["key"])
                lon, lat = float(row["longitude"]), float(row["latitude"])
            except (TypeError, ValueError):
                scan.skipped["unreadable row"] += 1
                continue
            if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                scan.skipped["coordinates out of range"] += 1
                continue
            name = f"{key}.jpg"
            if name not in images:
                scan.skipped["missing image"] += 1
                continue
            if name not in spectrograms:
                scan.skipped["missing spectrogram"] += 1
                continue
            scan.records.append(SourceRecord(str(key), row["long_key"], lon, lat, paper_split(key),
                                             root / "images" / name, root / "spectrograms" / name))
    scan.records.sort(key=lambda r: int(r.key))
    return scan


def spectrogram_to_log_mel(pixels: np.ndarray) -> np.ndarray:
    """8-bit spectrogram pixels (n_mels, T) -> the log-mel x = 10 ln v, float32 in [-15, +5]."""
    v = pixels.astype(np.float32) * np.float32((_V_HIGH - _V_LOW) / 255.0) + np.float32(_V_LOW)
    return (10.0 * np.log(v)).astype(np.float32)
