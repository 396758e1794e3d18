"""One interface over every dataset layout: records plus decoding of one pair (torch-free).

``open_source(path, data_cfg, front_end)`` detects the layout (SoundingEarth's ``metadata.csv``, a
pair table such as the demo world's ``pairs.csv``, or a CSV file), scans it, assigns splits and
returns a :class:`PairSource`. ``PairSource.image(i)`` and ``PairSource.log_mel(i)`` decode one
pair the way the encoders see it: the central image region as uint8 RGB, and the normalised log-mel.

``scan_recordings(path)`` reads the same tables as the recordings an atlas holds (same columns, same
skip counting; images not needed). :func:`dataset_kind` and :func:`image_ground_m` tell what a dataset
is (``demo-world``, ``soundingearth``, ``pair-table``) and how much ground its images cover.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.audio import FrontEndConfig, file_log_mel, normalise
from engine.config.data import DataConfig
from engine.data.images import decode_central_region
from engine.data.pair_table import DEMO_WORLD_FORMAT, TABLE_NAME, WORLD_FILE, scan_pair_table
from engine.data.records import SPECTROGRAM_JPG, PairRecord, SkipReport
from engine.data.soundingearth import decode_spectrogram_jpg, scan_soundingearth
from engine.data.splits import assign_splits
from engine.errors import DatasetError

log = logging.getLogger(__name__)


@dataclass
class PairSource:
    """A scanned dataset: usable records, their splits, and how rows were skipped."""

    root: Path
    layout: str                 # "soundingearth" or "pairs"
    audio_source: str           # "spectrogram" or "audio"
    records: list[PairRecord]
    splits: list[str]
    split_rule: str
    report: SkipReport
    data_cfg: DataConfig
    front_end: FrontEndConfig
    table: Path = field(default_factory=Path)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def kind(self) -> str:
        """``soundingearth``, ``demo-world`` or ``pair-table`` (see :func:`dataset_kind`)."""
        return dataset_kind(self.table, self.layout)

    def indices(self, split: str | None) -> list[int]:
        """Indices of the records in a split (all records for None or ``all``)."""
        if split in (None, "all"):
            return list(range(len(self.records)))
        return [i for i, s in enumerate(self.splits) if s == split]

    def image(self, i: int) -> np.ndarray:
        """The central region of record i's image, (stored_size, stored_size, 3) uint8."""
        return record_image(self.records[i], self.data_cfg)

    def log_mel(self, i: int) -> np.ndarray:
        """Record i's whole normalised log-mel, (n_mels, T) float32."""
        return record_log_mel(self.records[i], self.front_end)


def record_image(record: PairRecord, data_cfg: DataConfig) -> np.ndarray:
    """The central region of a record's image, (stored_size, stored_size, 3) uint8.

    Raises:
        ImageFileError: a missing, corrupt or truncated image.
    """
    return decode_central_region(record.image, data_cfg.image_region, data_cfg.stored_size)


def record_log_mel(record: PairRecord, front_end: FrontEndConfig) -> np.ndarray:
    """A record's whole normalised log-mel, (n_mels, T) float32.

    Raises:
        AudioFileError: an unreadable audio file or spectrogram.
    """
    if record.audio_kind == SPECTROGRAM_JPG:
        return normalise(decode_spectrogram_jpg(record.audio), front_end)
    return file_log_mel(record.audio, front_end)


SOUNDINGEARTH_IMAGE_M = 1024 * 0.2  # 1024 px at about 0.2 m per pixel (the dataset's description)
DATASET_KINDS = ("soundingearth", "demo-world", "pair-table")


def demo_world_info(path: str | Path) -> dict[str, Any] | None:
    """The demo world's ``world.json`` beside a dataset path (its folder or its ``pairs.csv``), or None."""
    path = Path(path)
    world = (path if path.is_dir() else path.parent) / WORLD_FILE
    if not world.is_file():
        return None
    try:
        info = json.loads(world.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("%s: unreadable (%s); not taken as a demo world", world, err)
        return None
    return info if isinstance(info, dict) and info.get("format") == DEMO_WORLD_FORMAT else None


def dataset_kind(path: str | Path, layout: str) -> str:
    """What a dataset is: ``soundingearth``, ``demo-world`` (a pair table with the demo world's
    ``world.json`` beside it) or ``pair-table``.

    Args:
        path: the dataset folder or its table.
        layout: ``soundingearth`` or ``pairs`` (from :func:`detect_layout`).
    """
    if layout == "soundingearth":
        return "soundingearth"
    return "demo-world" if demo_world_info(path) is not None else "pair-table"


def image_ground_m(source: PairSource) -> float | None:
    """The ground width a dataset's images cover, in metres, where the layout says so.

    The demo world records it in ``world.json`` (``image_size_m``); SoundingEarth's images cover about
    205 m; for other pair tables it is unknown (None).
    """
    if source.layout == "soundingearth":
        return SOUNDINGEARTH_IMAGE_M
    if source.layout == "campaign":  # a campaign's chips are cut at a known ground size
        return getattr(source, "image_ground_m", None)
    info = demo_world_info(source.table)
    try:
        size = float(info.get("image_size_m", 0)) if info else 0.0
    except (TypeError, ValueError):
        size = 0.0
    return size if size > 0 else None


def _is_soundingearth_csv(path: Path) -> bool:
    """A CSV whose header has SoundingEarth's ``long_key`` and ``mp3name`` (whatever the file's name)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = {h.strip() for h in next(csv.reader(f), [])}
    except (OSError, UnicodeDecodeError, csv.Error):
        return False  # the scanner reports the unreadable file
    return {"long_key", "mp3name"} <= header


def detect_layout(path: Path) -> tuple[str, Path]:
    """(``soundingearth`` | ``pairs``, the table file) for a dataset path."""
    if not path.exists():
        raise DatasetError(path, "not found", "name a SoundingEarth folder, a pair table or the demo world")
    if path.is_file():
        if path.name == "metadata.csv" or (path.suffix.lower() == ".csv" and _is_soundingearth_csv(path)):
            return "soundingearth", path
        if path.suffix.lower() == ".csv":
            return "pairs", path
        raise DatasetError(path, "is not a CSV table", "give a folder or a pair table .csv")
    if (path / "metadata.csv").is_file():
        return "soundingearth", path / "metadata.csv"
    if (path / TABLE_NAME).is_file():
        return "pairs", path / TABLE_NAME
    raise DatasetError(path, f"holds neither metadata.csv (SoundingEarth) nor {TABLE_NAME} (pair table)",
                       "name the dataset's folder or its table")


def open_source(path: str | Path, data_cfg: DataConfig | None = None,
                front_end: FrontEndConfig | None = None, split_seed: int = 0) -> PairSource:
    """Scan a dataset and assign splits.

    Args:
        path: SoundingEarth folder, a folder with ``pairs.csv``, or a pair table CSV.
        data_cfg: layout, audio source and split rule (defaults: detect everything).
        front_end: the audio front-end for audio files and normalisation.
        split_seed: seed of the blocked split's cell hash.
    Raises:
        DatasetError: the path, a required folder or a column is missing.
    """
    data_cfg = data_cfg or DataConfig()
    front_end = front_end or FrontEndConfig()
    path = Path(path)
    layout, table = detect_layout(path)
    if data_cfg.layout != "auto" and data_cfg.layout != layout:
        raise DatasetError(path, f"looks like a {layout} dataset, not {data_cfg.layout}", "check --data or data.layout")
    if layout == "soundingearth":
        records, report, audio_source = scan_soundingearth(table, data_cfg.audio_source)
        root = table.parent
    else:
        records, report = scan_pair_table(table)
        audio_source, root = "audio", table.parent
    splits, rule = assign_splits(records, data_cfg.split_rule, layout, data_cfg.block_km, split_seed)
    _log_skips(report)
    return PairSource(root=root, layout=layout, audio_source=audio_source, records=records, splits=splits,
                      split_rule=rule, report=report, data_cfg=data_cfg, front_end=front_end, table=table)


def _log_skips(report: SkipReport) -> None:
    for reason, examples in report.examples.items():
        for message in examples:
            log.warning("skipped (%s): %s", reason, message)


@dataclass
class RecordingScan:
    """The recordings of a table (see :func:`scan_recordings`)."""

    table: Path
    layout: str                 # "soundingearth" or "pairs"
    records: list[PairRecord]
    report: SkipReport

    @property
    def kind(self) -> str:
        return dataset_kind(self.table, self.layout)


def scan_recordings(path: str | Path) -> RecordingScan:
    """The playable recordings of a pair table or SoundingEarth, e.g. for an atlas.

    The columns, the coordinate checks, the skip counting and its summary are those of
    :func:`open_source`; images are not needed (a row's ``image`` is None when it has none). Every
    record is an audio file the front-end reads: a SoundingEarth row counts only with its raw recording
    (``raw_audio/<long_key>/<mp3name>``), because an atlas plays its recordings and embeds them again
    from the file when it is re-embedded, which a spectrogram JPEG cannot give; rows without one are
    skipped as "missing audio".

    Args:
        path: a pair table CSV (or its folder), or SoundingEarth's metadata.csv (or its folder).
    Returns:
        A :class:`RecordingScan`.
    Raises:
        DatasetError: the table or a column is missing, ids are repeated, a split value is unknown, or a
        SoundingEarth folder has no ``raw_audio``.
    """
    layout, table = detect_layout(Path(path))
    if layout == "soundingearth":
        raw = table.parent / "raw_audio"
        if not raw.is_dir():
            raise DatasetError(raw, "folder missing", "recordings are played from SoundingEarth's raw audio "
                               "(raw_audio/<long_key>/<mp3name> beside metadata.csv); fetch it first")
        records, report, _ = scan_soundingearth(table, "raw", require_image=False)
    else:
        records, report = scan_pair_table(table, require_image=False)
    _log_skips(report)
    return RecordingScan(table, layout, records, report)
