"""SoundingEarth exactly as distributed (torch-free).

Layout::

    DIR/metadata.csv                       18 columns (METADATA_COLUMNS), one row per recording
    DIR/images/<key>.jpg                   1024 x 1024 RGB aerial image centred on the recording
    DIR/spectrograms/<key>.jpg             8-bit grey, 128 mel rows x T columns (see below)
    DIR/raw_audio/<long_key>/<mp3name>     optional: the recordings themselves, fetched by the user

A spectrogram pixel p stands for v = p·(e^0.5 − e^−1.5)/255 + e^−1.5, i.e. a log-mel value x
clipped to [−15, +5] and stored as exp(x/10); :func:`decode_spectrogram_jpg` inverts that to x.

Audio sources: ``spectrogram`` uses the JPEGs (the paper's input); ``raw`` computes our own log-mels
from ``raw_audio`` through the front-end, which is what a model must be trained on for the app's
microphone and file queries; ``auto`` takes ``spectrogram`` when that folder exists, else ``raw``.
Rows whose files are missing or whose coordinates are impossible are skipped and counted.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.data.records import (
    AUDIO_FILE,
    SPECTROGRAM_JPG,
    PairRecord,
    SkipReport,
    parse_float,
    read_csv_table,
    valid_coordinates,
)
from engine.errors import AudioFileError, DatasetError

log = logging.getLogger(__name__)

METADATA_COLUMNS = (
    "long_key", "key", "longitude", "latitude", "altitude", "description", "date_recorded", "date_uploaded",
    "creator", "licenseurl", "title", "mp3name", "mp3mb", "mp3seconds", "mp3channels", "mp3bitrate",
    "mp3samplerate", "mp3file",
)
AUDIO_SOURCES = ("auto", "spectrogram", "raw")
SPECTROGRAM_LOW = math.exp(-1.5)
SPECTROGRAM_HIGH = math.exp(0.5)
SPECTROGRAM_ROWS = 128


def read_metadata(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Read metadata.csv; stop with :class:`DatasetError` if a SoundingEarth column is missing."""
    return read_csv_table(path, METADATA_COLUMNS,
                          f"SoundingEarth's metadata.csv has the columns {', '.join(METADATA_COLUMNS)}",
                          "restore metadata.csv from the archive")


def _names(folder: Path) -> set[str]:
    """File names in a folder (one directory scan instead of 50,000 stat calls)."""
    try:
        return {e.name for e in folder.iterdir()}
    except OSError:
        return set()


def resolve_audio_source(root: Path, audio_source: str) -> str:
    if audio_source not in AUDIO_SOURCES:
        raise DatasetError("--audio-source", f"unknown value {audio_source!r}", f"use one of {', '.join(AUDIO_SOURCES)}")
    if audio_source == "auto":
        audio_source = "spectrogram" if (root / "spectrograms").is_dir() else "raw"
    folder = root / ("spectrograms" if audio_source == "spectrogram" else "raw_audio")
    if not folder.is_dir():
        other = "raw" if audio_source == "spectrogram" else "spectrogram"
        raise DatasetError(folder, "folder missing",
                           f"SoundingEarth's {audio_source} audio lives there; restore it or use --audio-source {other}")
    return audio_source


def scan_soundingearth(root: str | Path, audio_source: str = "auto", require_image: bool = True
                       ) -> tuple[list[PairRecord], SkipReport, str]:
    """Read metadata.csv and keep the rows whose files exist and whose coordinates are possible.

    Args:
        root: the extracted SoundingEarth folder, or its metadata CSV (the folders are beside it).
        audio_source: ``auto``, ``spectrogram`` or ``raw`` (see module docstring).
        require_image: False to read the recordings only (an atlas): ``images/`` is not needed and a
            row without its image is kept (``image`` None).
    Returns:
        (records, skip report, the audio source used).
    Raises:
        DatasetError: no metadata.csv, a missing column, or a missing images/spectrograms/raw_audio folder.
    """
    root = Path(root)
    meta = root if root.suffix.lower() == ".csv" else root / "metadata.csv"
    root = meta.parent
    if not meta.is_file():
        raise DatasetError(meta, "file not found", "point --data at the extracted SoundingEarth folder")
    if require_image and not (root / "images").is_dir():
        raise DatasetError(root / "images", "folder missing", "SoundingEarth's images/<key>.jpg live there")
    audio_source = resolve_audio_source(root, audio_source)
    _, rows = read_metadata(meta)
    images = _names(root / "images")
    spectrograms = _names(root / "spectrograms") if audio_source == "spectrogram" else set()
    report = SkipReport(len(rows))
    records: list[PairRecord] = []
    for line, row in enumerate(rows, start=2):
        key_text = (row.get("key") or "").strip()
        lon, lat = parse_float(row.get("longitude")), parse_float(row.get("latitude"))
        if not key_text.lstrip("-").isdigit():
            report.skip("bad key", f"{meta}:{line}: key {key_text!r} is not an integer")
            continue
        where = f"{meta}:{line} (key {key_text})"
        if not valid_coordinates(lon, lat):
            report.skip("bad coordinates", f"{where}: impossible coordinates lon {row.get('longitude')!r}, "
                        f"lat {row.get('latitude')!r}")
            continue
        key = int(key_text)
        image: Path | None = root / "images" / f"{key}.jpg"
        if f"{key}.jpg" not in images:
            if require_image:
                report.skip("missing image", f"{where}: image {image} missing")
                continue
            image = None
        if audio_source == "spectrogram":
            if f"{key}.jpg" not in spectrograms:
                report.skip("missing audio", f"{where}: spectrogram {root / 'spectrograms' / f'{key}.jpg'} missing")
                continue
            audio, kind = root / "spectrograms" / f"{key}.jpg", SPECTROGRAM_JPG
        else:
            audio = root / "raw_audio" / (row.get("long_key") or "").strip() / (row.get("mp3name") or "").strip()
            if not audio.is_file():
                report.skip("missing audio", f"{where}: raw audio {audio} missing")
                continue
            kind = AUDIO_FILE
        records.append(PairRecord(key=str(key), lon=lon, lat=lat, image=image, audio=audio, audio_kind=kind,
                                  number=key, title=row.get("title") or ""))
    return records, report, audio_source


def decode_spectrogram_jpg(path: str | Path) -> np.ndarray:
    """A SoundingEarth spectrogram JPEG as the log-mel values x it encodes, (128, T) float32 in [−15, 5].

    Raises:
        AudioFileError: missing, corrupt or truncated JPEG, or not 128 rows high.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("L"), dtype=np.float32)
    except FileNotFoundError:
        raise AudioFileError(path, "file not found", "check the path") from None
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AudioFileError(path, f"unreadable spectrogram ({message})",
                             "the file is corrupt or truncated; restore it from the archive") from None
    if pixels.shape[0] != SPECTROGRAM_ROWS or pixels.shape[1] < 1:
        raise AudioFileError(path, f"spectrogram is {pixels.shape[0]}x{pixels.shape[1]}, expected "
                             f"{SPECTROGRAM_ROWS} mel rows", "restore it from the archive")
    v = pixels * ((SPECTROGRAM_HIGH - SPECTROGRAM_LOW) / 255.0) + SPECTROGRAM_LOW
    return (10.0 * np.log(v)).astype(np.float32)


def encode_spectrogram_jpg(log_mel: np.ndarray) -> np.ndarray:
    """The inverse of :func:`decode_spectrogram_jpg` up to 8-bit rounding: x -> uint8 pixels.

    Used to write test fixtures in the distributed encoding.
    """
    v = np.exp(np.clip(np.asarray(log_mel, np.float64), -15.0, 5.0) / 10.0)
    return np.clip(np.round((v - SPECTROGRAM_LOW) * 255.0 / (SPECTROGRAM_HIGH - SPECTROGRAM_LOW)), 0, 255).astype(np.uint8)
