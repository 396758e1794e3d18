"""PyTorch datasets over any layout: dict samples with fixed keys, a seeded epoch sampler, collation.

A sample is ``{"image", "audio", "lon", "lat", "key", "index"}``:

- ``image``: uint8 (3, S, S), the central region of the aerial image (augmentation, on whatever
  device, turns it into the encoder's input: :mod:`engine.augment`);
- ``audio``: float32 (1, n_mels, T), the normalised log-mel: a random crop of ``crop_frames`` for
  training, the whole clip for evaluation (``crop_frames=None``);
- ``lon``, ``lat``: degrees; ``key``: the dataset's identifier; ``index``: the record's position.

A pair whose files turn out unreadable yields ``{"error", "reason", "key", "index"}`` instead; the
collate function drops it and lists ``(key, reason, message)`` under the batch's ``"skipped"``, so
one bad file costs a sample, not the run.

Randomness is a pure function of (seed, epoch, record), so the order and the crops of an epoch are
the same with any number of workers and after a resume.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from engine.augment import random_time_crop
from engine.data.records import PairRecord
from engine.errors import AudioFileError, ImageFileError


class PairStore(Protocol):
    """Decodes record i: a :class:`~engine.data.source.PairSource` or a :class:`~engine.data.cache.PairCache`."""

    def image(self, i: int) -> np.ndarray: ...

    def log_mel(self, i: int) -> np.ndarray: ...


class PairDataset(Dataset):
    """Pairs of a store, restricted to ``indices`` (e.g. one split).

    Args:
        store: decodes images and log-mels by record index.
        records: all records of the dataset (for keys and coordinates).
        indices: the record indices this dataset serves, in order.
        crop_frames: frames of the random training crop; None yields whole clips.
        seed: seed of the crops (combined with the epoch, see :meth:`set_epoch`).
    """

    def __init__(self, store: PairStore, records: Sequence[PairRecord], indices: Sequence[int],
                 crop_frames: int | None = None, seed: int = 0) -> None:
        self.store = store
        self.records = records
        self.indices = list(indices)
        self.crop_frames = crop_frames
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        """Sample at a position; ``(position, epoch)`` (what :class:`EpochBatchSampler` yields) also
        names the epoch, which reaches persistent worker processes that :meth:`set_epoch` cannot."""
        position, epoch = item if isinstance(item, tuple) else (item, self.epoch)
        i = self.indices[position]
        record = self.records[i]
        try:
            image = self.store.image(i)
        except ImageFileError as err:
            return {"error": str(err), "reason": "unreadable image", "key": record.key, "index": i}
        try:
            mel = self.store.log_mel(i)
        except AudioFileError as err:
            return {"error": str(err), "reason": "unreadable audio", "key": record.key, "index": i}
        if self.crop_frames is not None:
            rng = np.random.default_rng([self.seed, epoch, i])
            mel = random_time_crop(mel, self.crop_frames, rng)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "audio": torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))[None],
            "lon": record.lon, "lat": record.lat, "key": record.key, "index": i,
        }


def collate_pairs(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into a batch; drop unreadable ones into ``batch["skipped"]``.

    ``audio`` is stacked when all clips have the same length, else left as a list (whole clips).
    """
    good = [s for s in samples if "error" not in s]
    batch: dict[str, Any] = {"skipped": [(s["key"], s["reason"], s["error"]) for s in samples if "error" in s]}
    batch["size"] = len(good)
    if not good:
        return batch
    batch["image"] = torch.stack([s["image"] for s in good])
    audio = [s["audio"] for s in good]
    batch["audio"] = torch.stack(audio) if len({a.shape for a in audio}) == 1 else audio
    batch["lon"] = torch.tensor([s["lon"] for s in good], dtype=torch.float64)
    batch["lat"] = torch.tensor([s["lat"] for s in good], dtype=torch.float64)
    batch["key"] = [s["key"] for s in good]
    batch["index"] = torch.tensor([s["index"] for s in good], dtype=torch.long)
    return batch


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Shuffled batches, the permutation a pure function of (seed, epoch); can start mid-epoch.

    Yields lists of ``(position, epoch)`` so that the dataset's crops follow the epoch even in
    persistent worker processes.

    Args:
        n: dataset length.
        batch_size: samples per batch; the last incomplete batch is dropped (the batch-all loss
            wants full batches), unless the whole dataset is smaller than one batch.
        seed: the run's seed.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def batches_per_epoch(self) -> int:
        return max(1, self.n // self.batch_size) if self.n else 0

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.start_batch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        size = min(self.batch_size, self.n)
        for b in range(self.start_batch, self.batches_per_epoch()):
            yield [(position, self.epoch) for position in order[b * size:(b + 1) * size]]


def quiet_worker(_: int) -> None:
    """Data loader workers ignore SIGINT: the training process handles Ctrl-C and stops them itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
