"""The audio front-end's parameters: everything that changes the log-mel an encoder sees.

A model bundle records them, so the app embeds a clip exactly as the encoder was trained; the front-end
itself is :mod:`engine.audio.front_end`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from engine.config.fields import known_fields
from engine.errors import ConfigError

# ``clip_standardise``: each clip minus its mean, over its standard deviation (dB); ``none``: dB as is;
# ``soundingearth_exp``: the SoundingEarth spectrogram encoding, dB clipped to [-15, +5] and stored as
# exp(x / 10) in [e^-1.5, e^0.5] (what the authors' released encoders take; see engine.interop).
NORMALISATIONS = ("clip_standardise", "none", "soundingearth_exp")


@dataclass(frozen=True)
class FrontEndConfig:
    """Everything that determines the log-mel an encoder sees.

    Defaults: 22,050 Hz (enough for birdsong and insects up to 11 kHz at half the cost of 44.1 kHz),
    a 2048-point Hann STFT with hop 512 (93 ms windows, 23 ms hop: resolves harmonics of calls and
    the slow envelopes of waves and traffic), 128 Slaney mel bands from 50 Hz (below is mostly
    handling and wind rumble) to Nyquist, power in dB with an absolute floor (-100 dB), then each
    clip standardised by its own mean and standard deviation so recording gain does not matter.
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    f_min: float = 50.0
    f_max: float = 11025.0
    db_floor: float = -100.0
    normalisation: str = "clip_standardise"  # or "none", or "soundingearth_exp" (see NORMALISATIONS)
    std_floor_db: float = 1.0
    chunk_seconds: float = 5.0
    chunk_hop_seconds: float = 5.0
    max_chunks: int = 64
    min_seconds: float = 0.5
    resample_quality: str = "HQ"

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise ConfigError("front_end.normalisation", f"unknown value {self.normalisation!r}",
                              f"use one of {', '.join(NORMALISATIONS)}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ConfigError("front_end.f_min/f_max", f"{self.f_min}..{self.f_max} Hz is not inside "
                              f"0..{self.sample_rate / 2} Hz", "choose 0 <= f_min < f_max <= sample_rate/2")
        if self.hop_length <= 0 or self.n_fft < self.hop_length:
            raise ConfigError("front_end.hop_length", "must be positive and at most n_fft", None)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def chunk_frames(self) -> int:
        return int(round(self.chunk_seconds * self.frames_per_second))

    @property
    def chunk_hop_frames(self) -> int:
        return max(1, int(round(self.chunk_hop_seconds * self.frames_per_second)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontEndConfig:
        return cls(**known_fields(cls, data, "front_end",
                                  "the bundle or run was made by a newer version; update Soundscape Mapper"))
