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
        ground_size_m: recorder campaigns: the ground width (m) the encoder's view covers, which sets the
            chips cut from the imagery (``train --init`` takes the initial run's; None: unknown).
        samples_per_site: recorder campaigns: random windows drawn per training site in an epoch.
        eval_windows: recorder campaigns: fixed windows whose mean embedding is a site's sound in evaluation.
        holdout_sites: recorder campaigns: the test sites by name (``--holdout-sites``); empty: drawn by cells.
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
    ground_size_m: float | None = None
    samples_per_site: int = 1
    eval_windows: int = 4
    holdout_sites: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "holdout_sites", tuple(str(s) for s in self.holdout_sites))
        if self.ground_size_m is not None and not self.ground_size_m > 0:
            raise ConfigError("data.ground_size_m", f"{self.ground_size_m} is not positive", "use e.g. 200")
        if self.samples_per_site < 1 or self.eval_windows < 1:
            raise ConfigError("data", "samples_per_site and eval_windows must be at least 1", None)
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
        # ``train`` writes ``ground_size_m`` as a fact about the data (the view's ground width); read back,
        # it is the chip size a recorder campaign is cut at.
        return cls(**known_fields(cls, data, "data"))

