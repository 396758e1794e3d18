"""Augmentation strengths (the batch augmentation itself is :mod:`engine.augment`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from engine.config.fields import known_fields
from engine.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths. Set a strength to 0 (or a flag to False) to switch a part off.

    ``crop_scale``: side of the random crop as a fraction of the stored region (min, max);
    ``eval_scale``: the side the encoder sees at evaluation and in the app (centre, no rotation).
    """

    crop_scale: tuple[float, float] = (0.7, 1.0)
    eval_scale: float = 0.85
    rotate: bool = True
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    blur_prob: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    time_masks: int = 0
    time_mask_frames: int = 20
    freq_masks: int = 0
    freq_mask_bins: int = 12

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop_scale", tuple(self.crop_scale))
        object.__setattr__(self, "blur_sigma", tuple(self.blur_sigma))
        lo, hi = self.crop_scale
        if not (0 < lo <= hi <= 1 and 0 < self.eval_scale <= 1):
            raise ConfigError("augment.crop_scale/eval_scale", "scales must lie in (0, 1] with min <= max", None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        return cls(**known_fields(cls, data, "augment"))
