"""How a dataset is read and prepared for the encoders (recorded in RUN/config.json)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from engine.config.fields import known_fields
from engine.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    """Reading a dataset.

    Attributes:
        layout: ``auto`` (detect), ``soundingearth`` or ``pairs``.
        audio_source: SoundingEarth only: ``auto``, ``spectrogram`` (the archive's JPEGs) or ``raw``
            (our front-end on ``raw_audio``; needed for a model the app queries with recordings).
        split_rule: ``auto``, ``paper``, ``blocked`` or ``column`` (see :mod:`engine.data.splits`).
        block_km: cell size of the blocked split.
        image_region: fraction of each image's side kept around its centre (where the recording was made).
        stored_size: the central region is resized to this many pixels before augmentation.
        audio_crop_seconds: length of the random log-mel crop a training sample carries.
        cache: decode every image and log-mel once into a cache folder (fast epochs on small data).
        cache_max_seconds: longer clips are cached as their first this-many seconds.
        num_workers: data loader processes (0: load in the training process).
        cache_workers: processes that decode the cache (1: in the calling process).
    """

    layout: str = "auto"
    audio_source: str = "auto"
    split_rule: str = "auto"
    block_km: float = 10.0
    image_region: float = 0.75
    stored_size: int = 256
    audio_crop_seconds: float = 5.0
    cache: bool = False
    cache_max_seconds: float = 60.0
    num_workers: int = 2
    cache_workers: int = 2

    def __post_init__(self) -> None:
        if self.layout not in ("auto", "soundingearth", "pairs"):
            raise ConfigError("data.layout", f"unknown layout {self.layout!r}", "use auto, soundingearth or pairs")
        if not 0 < self.image_region <= 1:
            raise ConfigError("data.image_region", f"{self.image_region} is not in (0, 1]", "use e.g. 0.75")
        if not (isinstance(self.block_km, (int, float)) and math.isfinite(self.block_km) and self.block_km > 0):
            raise ConfigError("--block-km", f"must be a positive number of kilometres, got {self.block_km!r}",
                              "use e.g. --block-km 10")
        if isinstance(self.num_workers, int) and self.num_workers < 0:
            raise ConfigError("--workers", f"must be 0 or more, got {self.num_workers}", "use 0 to load in-process")
        if self.stored_size < 16 or not self.audio_crop_seconds > 0 or self.num_workers < 0:
            raise ConfigError("data", "stored_size >= 16, audio_crop_seconds > 0 and num_workers >= 0 are needed", None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        # ``ground_size_m`` is written beside the config by ``train`` (a fact about the data, not a setting).
        return cls(**known_fields(cls, {k: v for k, v in data.items() if k != "ground_size_m"}, "data"))
