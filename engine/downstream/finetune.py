"""Fine-tuning: the whole backbone plus a new linear head, trained end to end with a small learning
rate (AdamW, cosine decay; the new head learns ``head_lr_mult`` times faster than the backbone)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from engine.downstream.data import SkippedFiles, note_bad_items, to_float
from engine.downstream.weights import PooledBackbone
from engine.models import ImageEncoder
from engine.progress import Job

log = logging.getLogger(__name__)


class SceneClassifier(nn.Module):
    """Pooled backbone features -> linear head. Input: RGB in [0, 1]."""

    def __init__(self, encoder: ImageEncoder, n_classes: int) -> None:
        super().__init__()
        self.features = PooledBackbone(encoder)
        self.head = nn.Linear(self.features.num_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def augment_dihedral(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and quarter turn of each square image: aerial scenes have no 'up'."""
    n = x.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    turns = torch.randint(0, 4, (n,), generator=generator)
    out = x.clone()
    out[flip.to(x.device)] = out[flip.to(x.device)].flip(-1)
    for k in (1, 2, 3):
        sel = (turns == k).to(x.device)
        if sel.any():
            out[sel] = torch.rot90(out[sel], k, dims=(-2, -1))
    return out


def finetune(model: SceneClassifier, loader: DataLoader, paths: Sequence[Path], epochs: int, lr: float,
             weight_decay: float, device: torch.device, skipped: SkippedFiles, job: Job | None = None,
             head_lr_mult: float = 10.0, augment: bool = True, seed: int = 0) -> list[dict]:
    """Train ``model`` in place on ``loader`` (items of :class:`ImageDataset`).

    Returns:
        One dict per epoch: ``epoch``, ``loss`` (mean training cross-entropy), ``seen`` (images used).
    """
    model.to(device).train()
    optimiser = torch.optim.AdamW([
        {"params": model.features.parameters(), "lr": lr},
        {"params": model.head.parameters(), "lr": lr * head_lr_mult},
    ], weight_decay=weight_decay)
    total_steps = max(1, epochs * len(loader))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps)))
    generator = torch.Generator().manual_seed(seed)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    history = []
    step = 0
    for epoch in range(1, epochs + 1):
        loss_sum, seen = 0.0, 0
        for images, labels, index, ok in loader:
            if job is not None:
                job.check()
            if not ok.all():
                note_bad_items(paths, index, ok, skipped)
            if ok.sum() < 2:  # BatchNorm needs two images; a lone leftover is skipped this epoch
                continue
            x = to_float(images[ok], device)
            if augment:
                x = augment_dihedral(x, generator)
            y = labels[ok].to(device)
            with autocast:
                loss = nn.functional.cross_entropy(model(x).float(), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            loss_sum += loss.detach().item() * len(y)
            seen += len(y)
            if job is not None:
                job.report(step, total_steps, f"fine-tune epoch {epoch}/{epochs} loss {loss_sum / seen:.3f}")
        history.append({"epoch": epoch, "loss": loss_sum / seen if seen else float("nan"), "seen": seen})
        log.info("fine-tune epoch %d/%d: loss %.4f", epoch, epochs, history[-1]["loss"])
    model.eval()
    return history
