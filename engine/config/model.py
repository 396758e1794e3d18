"""The two encoders' shape: architectures, widths, embedding size, image input size."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from engine.config.fields import known_fields
from engine.errors import ConfigError

# The ResNets engine.models builds (torchvision's definitions; the soundingearth-* ones are the SoundingEarth
# authors' variants with a 32-channel stem and a 182-plane second stage, see engine.interop).
ARCH_NAMES = ("resnet18", "resnet34", "resnet50", "soundingearth-resnet18", "soundingearth-resnet50")
FIXED_WIDTH_ARCHS = ("soundingearth-resnet18", "soundingearth-resnet50")  # their stage widths are fixed


@dataclass(frozen=True)
class ModelConfig:
    """The two encoders. ``image_size`` is the side of the square RGB input the image encoder sees."""

    image_arch: str = "resnet18"
    audio_arch: str = "resnet18"
    image_width: int = 64
    audio_width: int = 64
    embed_dim: int = 128
    image_size: int = 192
    l2_normalise: bool = False  # the paper uses plain Euclidean distances

    def __post_init__(self) -> None:
        for name in (self.image_arch, self.audio_arch):
            if name not in ARCH_NAMES:
                raise ConfigError("model.arch", f"unknown architecture {name!r}", f"use one of {sorted(ARCH_NAMES)}")
        for name, width in ((self.image_arch, self.image_width), (self.audio_arch, self.audio_width)):
            if name in FIXED_WIDTH_ARCHS and width != 64:
                raise ConfigError("model.width", f"{name} has fixed stage widths, got width {width}", "use width 64")
        if self.embed_dim < 2 or self.image_size < 32:
            raise ConfigError("model", "embed_dim must be >= 2 and image_size >= 32", None)

    @property
    def distance(self) -> str:
        return "cosine" if self.l2_normalise else "euclidean"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**known_fields(cls, data, "model"))
