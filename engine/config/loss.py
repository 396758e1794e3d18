"""Which training loss, and its parameters (the losses themselves are :mod:`engine.losses`)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError

LOSSES = ("batch_all_triplet", "naive_triplet", "info_nce")


@dataclass(frozen=True)
class LossConfig:
    """Which loss and its parameter. ``margin`` applies to the triplet losses, ``tau`` to InfoNCE."""

    name: str = "batch_all_triplet"
    margin: float = 1.0
    tau: float = 0.2

    def __post_init__(self) -> None:
        if self.name not in LOSSES:
            raise ConfigError("train.loss", f"unknown loss {self.name!r}", f"use one of {', '.join(LOSSES)}")
        if self.margin <= 0 or self.tau <= 0:
            raise ConfigError("train.margin/tau", "must be positive", None)
