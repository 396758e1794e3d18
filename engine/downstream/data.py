"""Torch datasets and loaders for the downstream images.

An image that does not decode must not end a run that may take hours: the dataset returns a blank
image flagged ``ok=False`` (workers cannot raise without killing the loader), the loop drops it, and
:class:`SkippedFiles` logs each bad file once and counts it for the results file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from engine.downstream.decode import read_rgb
from engine.errors import UserInputError

log = logging.getLogger(__name__)


class SkippedFiles:
    """Files skipped because they cannot be used: logged once each with the reason, counted."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def add(self, path: str | Path, reason: str) -> None:
        if str(path) not in self.reasons:
            self.reasons[str(path)] = reason
            log.warning("skipping %s", reason)

    def __len__(self) -> int:
        return len(self.reasons)

    def to_dict(self) -> dict:
        return {"count": len(self.reasons), "files": sorted(self.reasons)}


class ImageDataset(Dataset):
    """Items ``(uint8 image (3, S, S), label, index, ok)``; a bad file gives ``ok=False``."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], indices: Sequence[int], size: int) -> None:
        self.paths, self.labels, self.indices, self.size = paths, labels, list(indices), size

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, bool]:
        index = self.indices[i]
        try:
            rgb = read_rgb(self.paths[index], self.size)
            ok = True
        except UserInputError:
            rgb, ok = np.zeros((self.size, self.size, 3), np.uint8), False
        return torch.from_numpy(rgb).permute(2, 0, 1).contiguous(), self.labels[index], index, ok


def make_loader(dataset: Dataset, batch_size: int, workers: int, shuffle: bool = False, seed: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A loader with a seeded shuffle, pinned memory when CUDA is present, persistent workers."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      pin_memory=torch.cuda.is_available(), drop_last=drop_last, generator=generator,
                      persistent_workers=workers > 0)


def note_bad_items(paths: Sequence[Path], index: torch.Tensor, ok: torch.Tensor, skipped: SkippedFiles) -> None:
    """Record the batch's items that did not decode (decoding again only those, for the reason)."""
    for i in index[~ok].tolist():
        try:
            read_rgb(paths[i])
            reason = f"{paths[i]}: could not be read"
        except UserInputError as err:
            reason = str(err)
        skipped.add(paths[i], reason)


def to_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N, 3, H, W) on the host -> float in [0, 1] on ``device`` (the cast happens there)."""
    return images.to(device, non_blocking=True).float().div_(255.0)
