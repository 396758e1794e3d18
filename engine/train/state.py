"""What a resumable run carries between steps: optimiser, schedule, counters, RNG; and its checkpoints.

A checkpoint (``RUN/checkpoints/{last,best}.pt``, written atomically) holds the two encoders' state
dicts, ``epoch`` (completed epochs), ``step`` (optimiser steps), ``metrics`` (the last validation),
and for resuming: ``optimizer``, ``scheduler``, ``progress`` (:class:`Progress` as a dict), ``rng``
(torch's CPU and CUDA generator states) and ``config``. Only tensors and plain values, so it loads
with ``weights_only=True``.

Data order, crops and batch augmentation are pure functions of (seed, epoch, step), so the step
counters and the seed are enough to resume them exactly; the global RNG states are saved as well
for anything else that draws from them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.checkpoint import save_checkpoint
from engine.config.run import TrainConfig


@dataclass
class Progress:
    """Counters of a run. ``epoch``: completed epochs; ``epoch_step``: steps done in epoch ``epoch + 1``."""

    epoch: int = 0
    step: int = 0
    epoch_step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    best_score: list[float] = field(default_factory=list)  # lower is better; empty: no validation yet
    best_epoch: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def build_optimizer(params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW as the config says; on CUDA with the fused kernel (the same update in a few launches
    per step instead of several per parameter tensor group)."""
    fused = bool(params) and all(p.is_cuda for p in params)
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)


def lr_factor(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """The learning-rate multiplier at a step: linear warm-up, then constant or cosine decay."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(1, total_steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, cfg))


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_payload(image_encoder: torch.nn.Module, audio_encoder: torch.nn.Module,
                       optimizer: torch.optim.Optimizer, scheduler: Any, progress: Progress,
                       metrics: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    return {
        "image_encoder": image_encoder.state_dict(), "audio_encoder": audio_encoder.state_dict(),
        "epoch": progress.epoch, "step": progress.step, "metrics": metrics,
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "progress": progress.to_dict(), "rng": rng_state(), "config": config,
    }


def save_state(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically (the previous file survives a crash or a full disk)."""
    save_checkpoint(path, payload)


def restore_state(payload: dict[str, Any], image_encoder: torch.nn.Module, audio_encoder: torch.nn.Module,
                  optimizer: torch.optim.Optimizer, scheduler: Any) -> Progress:
    """Load a ``last`` checkpoint into the live objects; returns the run's counters."""
    image_encoder.load_state_dict(payload["image_encoder"])
    audio_encoder.load_state_dict(payload["audio_encoder"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    set_rng_state(payload.get("rng", {}))
    return Progress.from_dict(payload.get("progress", {"epoch": payload.get("epoch", 0),
                                                       "step": payload.get("step", 0)}))
