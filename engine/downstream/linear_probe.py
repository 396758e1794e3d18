"""Linear evaluation: features of a frozen encoder, computed once, then a multinomial logistic
regression fitted on them (full-batch L-BFGS, L2 penalty, features standardised on the training set).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from engine.downstream.data import SkippedFiles, note_bad_items, to_float
from engine.progress import Job

log = logging.getLogger(__name__)


@torch.no_grad()
def extract_features(model: Callable[[torch.Tensor], torch.Tensor], loader: DataLoader, paths: Sequence[Path],
                     device: torch.device, skipped: SkippedFiles, job: Job | None = None,
                     what: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Run a frozen model over a loader of :class:`ImageDataset` items.

    Returns:
        (features (M, F) float32, dataset indices (M,)) for the M items that decoded.
    """
    feats, kept = [], []
    done, total = 0, len(loader.dataset)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    for images, _, index, ok in loader:
        if job is not None:
            job.check()
        if not ok.all():
            note_bad_items(paths, index, ok, skipped)
        if ok.any():
            with autocast:
                out = model(to_float(images[ok], device))
            feats.append(out.float().cpu())
            kept.append(index[ok])
        done += len(index)
        if job is not None:
            job.report(done, total, what)
    if not feats:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return torch.cat(feats).numpy(), torch.cat(kept).numpy()


class LinearClassifier(nn.Module):
    """Standardisation (fixed) + a linear layer: logits for each class."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = nn.Linear(mean.numel(), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.std)

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        device = self.mean.device
        return self(torch.as_tensor(x, dtype=torch.float32, device=device)).argmax(1).cpu().numpy()


def fit_logistic_regression(features: np.ndarray, labels: np.ndarray, n_classes: int, weight_decay: float = 1e-4,
                            max_iter: int = 500, device: torch.device | str = "cpu",
                            seed: int = 0) -> LinearClassifier:
    """Fit a multinomial logistic regression with L-BFGS.

    Args:
        features: (N, F) training features.
        labels: (N,) class indices in [0, n_classes).
        n_classes: number of classes (the output size, even if some are absent from ``labels``).
        weight_decay: L2 penalty ``weight_decay / 2 · ||W||²`` added to the mean cross-entropy.
        max_iter: L-BFGS iterations.
        device: where to fit.
        seed: seeds the (tiny) initial weights.

    Returns:
        A :class:`LinearClassifier` on ``device``.
    """
    device = torch.device(device)
    x = torch.as_tensor(features, dtype=torch.float32, device=device)
    y = torch.as_tensor(labels, dtype=torch.long, device=device)
    mean = x.mean(0)
    # A constant feature has std 0; 1 keeps it harmless (it carries no information anyway).
    std = x.std(0, unbiased=False)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    torch.manual_seed(seed)
    model = LinearClassifier(mean, std, n_classes).to(device)
    nn.init.zeros_(model.linear.weight)
    nn.init.zeros_(model.linear.bias)
    xs = (x - mean) / std
    optimiser = torch.optim.LBFGS(model.linear.parameters(), lr=1.0, max_iter=max_iter, history_size=20,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def objective() -> torch.Tensor:
        loss = nn.functional.cross_entropy(model.linear(xs), y)
        return loss + 0.5 * weight_decay * model.linear.weight.pow(2).sum()

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        loss = float(objective())
    log.info("logistic regression: %d samples, %d features, final loss %.4f", len(y), x.shape[1], loss)
    return model.eval()
