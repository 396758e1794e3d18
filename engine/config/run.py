"""The resolved training configuration: a preset file plus command-line overrides.

A preset is a JSON file in ``engine/config/presets/`` (or any path) with the sections ``model``
(:class:`~engine.config.model.ModelConfig`), ``front_end`` (:class:`~engine.config.front_end.FrontEndConfig`),
``data`` (:class:`~engine.config.data.DataConfig`), ``augment``
(:class:`~engine.config.augment.AugmentConfig`) and ``train`` (:class:`TrainConfig`); missing keys take
the defaults. The resolved :class:`RunConfig` is what RUN/config.json holds.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from engine.config.augment import AugmentConfig
from engine.config.data import DataConfig
from engine.config.fields import known_fields
from engine.config.front_end import FrontEndConfig
from engine.config.loss import LossConfig
from engine.config.model import ModelConfig
from engine.errors import ConfigError


def _require(value: object, option: str, low: float, high: float, whole: bool = False) -> None:
    """Raise :class:`ConfigError` naming ``option`` unless ``value`` is a finite number (a whole one if
    ``whole``) in ``[low, high]``."""
    ok_type = isinstance(value, int) if whole else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        problem = f"must be {'a whole number' if whole else 'a number'}, got {value!r}"
    elif not math.isfinite(value):
        problem = f"must be a finite number, got {value}"
    elif value < low:
        problem = f"must be at least {_number(low, whole)}, got {_number(value, whole)}"
    elif value > high:
        problem = f"must be at most {_number(high, whole)}, got {_number(value, whole)}"
    else:
        return
    raise ConfigError(option, problem, None)


def _number(value: float, whole: bool) -> str:
    return str(int(value)) if whole else f"{value:g}"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping.

    ``lr`` peaks after ``warmup_steps`` of linear warm-up; ``schedule`` ``cosine`` then decays it to
    ``lr * min_lr_ratio`` at the last step, ``constant`` keeps it (the paper: Adam, 1e-3, constant).
    ``device`` ``auto`` takes CUDA when present. ``deterministic`` asks PyTorch for deterministic
    kernels (exact resume and reproducible runs, somewhat slower on GPU). ``threads`` > 0 sets the
    CPU threads. ``log_every``: steps between step events in metrics.jsonl. ``freeze_epochs``: the first
    epochs train only the encoders' heads (backbones frozen, their batch-norm statistics kept);
    ``trainable`` says which backbone parts train afterwards: ``all``, ``layer4`` or ``head`` (none).
    """

    epochs: int = 100
    batch_size: int = 256
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    loss: str = "batch_all_triplet"
    margin: float = 1.0
    tau: float = 0.2
    grad_clip: float = 0.0
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False
    threads: int = 0
    log_every: int = 10
    val_every: int = 1
    freeze_epochs: int = 0
    trainable: str = "all"

    def __post_init__(self) -> None:
        if self.trainable not in ("all", "layer4", "head"):
            raise ConfigError("train.trainable", f"unknown value {self.trainable!r}", "use all, layer4 or head")
        if self.freeze_epochs < 0:
            raise ConfigError("train.freeze_epochs", f"must be at least 0, got {self.freeze_epochs}", None)
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError("train.optimizer", f"unknown optimizer {self.optimizer!r}", "use adam or adamw")
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError("train.schedule", f"unknown schedule {self.schedule!r}", "use constant or cosine")
        # Every number is checked here, where options and preset files meet, so a bad value stops the run
        # with one line before its folder exists (NaN passes any "<= 0" test: hence the finite checks).
        _require(self.epochs, "--epochs", 1, 1_000_000, whole=True)
        if isinstance(self.batch_size, int) and not isinstance(self.batch_size, bool) and self.batch_size < 2:
            raise ConfigError("--batch-size", f"must be at least 2 (the loss needs negatives), got {self.batch_size}",
                              None)
        _require(self.batch_size, "--batch-size", 2, 1 << 24, whole=True)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError("--lr", f"must be a positive finite number, got {self.lr}", "use e.g. --lr 1e-3")
        _require(self.seed, "--seed", 0, 2**32 - 1, whole=True)  # what every RNG accepts
        _require(self.weight_decay, "train.weight_decay", 0.0, 1e3)
        _require(self.warmup_steps, "train.warmup_steps", 0, 1 << 40, whole=True)
        _require(self.min_lr_ratio, "train.min_lr_ratio", 0.0, 1.0)
        _require(self.margin, "train.margin", 0.0, 1e6)
        _require(self.tau, "train.tau", 0.0, 1e6)
        _require(self.grad_clip, "train.grad_clip", 0.0, 1e12)
        _require(self.threads, "train.threads", 0, 4096, whole=True)
        _require(self.log_every, "train.log_every", 1, 1 << 40, whole=True)
        _require(self.val_every, "train.val_every", 1, 1 << 40, whole=True)
        LossConfig(self.loss, self.margin, self.tau)  # validates the loss name and parameters

    @property
    def loss_config(self) -> LossConfig:
        return LossConfig(self.loss, self.margin, self.tau)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run was trained with (RUN/config.json)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = ""
    image_weights: str | None = None
    init: dict[str, Any] | None = None  # train --init: the run the encoders started from (engine.train.init)

    @property
    def crop_frames(self) -> int:
        return max(1, int(round(self.data.audio_crop_seconds * self.front_end.frames_per_second)))

    @property
    def view_fraction(self) -> float:
        """Fraction of a source image's side the image encoder sees at evaluation (and in the app)."""
        return self.data.image_region * self.augment.eval_scale

    def to_dict(self) -> dict[str, Any]:
        data = self.data.to_dict()
        data["_view_fraction"] = self.view_fraction  # derived; for readers such as the exporter
        return {"model": self.model.to_dict(), "front_end": self.front_end.to_dict(), "data": data,
                "augment": self.augment.to_dict(), "train": dataclasses.asdict(self.train),
                "preset": self.preset, "image_weights": self.image_weights, "init": self.init}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a preset or a config.json dict (missing sections take their defaults)."""
        return cls(
            model=ModelConfig.from_dict(data.get("model", {})),
            front_end=FrontEndConfig.from_dict(data.get("front_end", {})),
            data=DataConfig.from_dict(data.get("data", {})),
            augment=AugmentConfig.from_dict(data.get("augment", {})),
            train=TrainConfig(**known_fields(TrainConfig, data.get("train", {}), "train")),
            preset=str(data.get("preset", "")),
            image_weights=data.get("image_weights"),
            init=data.get("init"),
        )

    def replace(self, section: str, **changes: Any) -> RunConfig:
        """A copy with some fields of one section changed (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **changes)})


def _presets_folder() -> Traversable:
    # Through this package, not by importing engine.config.presets: the desktop bundle ships the JSON
    # files as data, and PyInstaller cannot see a package imported by name.
    return resources.files("engine.config") / "presets"


def preset_names() -> list[str]:
    """The presets shipped in engine/config/presets/."""
    return sorted(p.name[:-5] for p in _presets_folder().iterdir() if p.name.endswith(".json"))


def preset_data(name: str) -> dict[str, Any]:
    """The raw sections of a shipped preset (by name) or a preset JSON file (by path), ``preset`` set.

    Raises:
        ConfigError: no such preset, or an unreadable file.
    """
    path = Path(name)
    if name.endswith(".json") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"--preset {name}", "file not found", "give a preset name or an existing .json file")
        text, label = path.read_text(), path.stem
    else:
        entry = _presets_folder().joinpath(f"{name}.json")
        if not entry.is_file():
            raise ConfigError(f"--preset {name}", "no such preset",
                              f"use one of {', '.join(preset_names())} or a path to a preset .json file")
        text, label = entry.read_text(), name
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--preset {name}", f"not valid JSON ({err})", "fix the file") from None
    data = {k: v for k, v in data.items() if k not in ("description",)}
    data.setdefault("preset", label)
    return data


def load_preset(name: str) -> RunConfig:
    """A shipped preset by name, or a preset JSON file by path.

    Raises:
        ConfigError: no such preset, an unreadable file, or a bad value in it.
    """
    data = preset_data(name)
    try:
        return RunConfig.from_dict(data)
    except TypeError as err:
        raise ConfigError(f"--preset {name}", str(err), "fix the preset file") from None
