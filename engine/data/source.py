"""One interface over every dataset layout: records plus decoding of one pair (torch-free).

``open_source(path, data_cfg, front_end)`` detects the layout (SoundingEarth's ``metadata.csv``, a
pair table such as the demo world's ``pairs.csv``, or a CSV file), scans it, assigns splits and
returns a :class:`PairSource`. ``PairSource.image(i)`` and ``PairSource.log_mel(i)`` decode one
pair the way the encoders see it: the central image region as uint8 RGB, and the normalised log-mel.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.audio import FrontEndConfig, file_log_mel, normalise
from engine.data.config import DataConfig
from engine.data.images import decode_central_region
from engine.data.pair_table import TABLE_NAME, scan_pair_table
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


def image_ground_m(source: PairSource) -> float | None:
    """The ground width a dataset's images cover, in metres, where the layout says so.

    The demo world records it in ``world.json`` (``image_size_m``); SoundingEarth's images cover about
    205 m; for other pair tables it is unknown (None).
    """
    if source.layout == "soundingearth":
        return SOUNDINGEARTH_IMAGE_M
    world = source.table.parent / "world.json"
    if world.is_file():
        try:
            info = json.loads(world.read_text())
            if info.get("format") == "soundscape-demo-world" and float(info.get("image_size_m", 0)) > 0:
                return float(info["image_size_m"])
        except (OSError, ValueError, TypeError):
            log.warning("%s: unreadable; the image ground size is not recorded", world)
    return None


def detect_layout(path: Path) -> tuple[str, Path]:
    """(``soundingearth`` | ``pairs``, the table file) for a dataset path."""
    if not path.exists():
        raise DatasetError(path, "not found", "point --data at a SoundingEarth folder, a pair table or the demo world")
    if path.is_file():
        if path.name == "metadata.csv":
            return "soundingearth", path
        if path.suffix.lower() == ".csv":
            return "pairs", path
        raise DatasetError(path, "is not a CSV table", "give a folder or a pair table .csv")
    if (path / "metadata.csv").is_file():
        return "soundingearth", path / "metadata.csv"
    if (path / TABLE_NAME).is_file():
        return "pairs", path / TABLE_NAME
    raise DatasetError(path, f"holds neither metadata.csv (SoundingEarth) nor {TABLE_NAME} (pair table)",
                       "point --data at the dataset's folder")


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
        records, report, audio_source = scan_soundingearth(table.parent, data_cfg.audio_source)
        root = table.parent
    else:
        records, report = scan_pair_table(table)
        audio_source, root = "audio", table.parent
    splits, rule = assign_splits(records, data_cfg.split_rule, layout, data_cfg.block_km, split_seed)
    for reason, examples in report.examples.items():
        for message in examples:
            log.warning("skipped (%s): %s", reason, message)
    return PairSource(root=root, layout=layout, audio_source=audio_source, records=records, splits=splits,
                      split_rule=rule, report=report, data_cfg=data_cfg, front_end=front_end, table=table)
