"""Host side of the GPU input pipeline: read the cache's shards and hand out raw batches.

Each rank reads its own share of the shards and each loader worker of a rank its own share of that, so no
shard is read twice in an epoch. Every epoch the shards are dealt afresh (a seeded permutation, the same
on every rank, then balanced by sample count), so a rank sees different shards each epoch. A batch is
raw: the concatenated JPEG bytes with offsets (decoded later on the device), the log-mels (normalised when the
cache was made) already cut to ``audio_frames`` columns at a random offset with the engine's
:func:`engine.augment.random_time_crop` (a slice, far cheaper here than copying whole clips to the
device), coordinates and keys.

All ranks must take the same number of steps or DDP hangs at the end of an epoch: every stream (a worker
of a rank) yields exactly ``batches_per_stream`` batches per epoch, the minimum over all streams, known
from the index without any communication. The stream is endless; the consumer takes
``steps_per_epoch`` batches per epoch.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from engine.augment import random_time_crop
from engine.errors import ConfigError, DatasetError
from engine.shards.format import RawSample, ShardIndex, ShardInfo, iter_shard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoaderConfig:
    """Args:
        batch_size: samples per batch on each rank.
        audio_frames: log-mel columns per sample (the temporal crop).
        workers: loader processes per rank (0: read in the calling process).
        shuffle_buffer: samples held for shuffling by each worker.
        seed: shard dealing, shuffling and crop offsets.
        split: which split's shards to read.
        decode: where the JPEGs are decoded: ``device`` (batched nvJPEG in the device pipeline) or
            ``workers`` (libjpeg-turbo in the loader processes; uint8 images travel to the device).
    """

    batch_size: int = 256
    audio_frames: int = 215
    workers: int = 6
    shuffle_buffer: int = 2048
    seed: int = 0
    split: str = "train"
    decode: str = "device"

    def __post_init__(self) -> None:
        if self.decode not in DECODE_PLACES:
            raise ConfigError("--jpeg-decode", f"unknown place {self.decode!r}", f"use one of {', '.join(DECODE_PLACES)}")


DECODE_PLACES = ("device", "workers")


@dataclass(frozen=True)
class EpochPlan:
    epoch: int
    streams: list[list[ShardInfo]]  # stream s = rank * workers_per_rank + worker
    workers_per_rank: int
    batches_per_stream: int

    @property
    def steps(self) -> int:
        """Batches each rank takes in this epoch."""
        return self.batches_per_stream * self.workers_per_rank

    def stream(self, rank: int, worker: int) -> list[ShardInfo]:
        return self.streams[rank * self.workers_per_rank + worker]


def streams_per_rank(n_shards: int, world_size: int, workers: int) -> int:
    """Loader streams per rank: the requested workers, fewer when there are too few shards."""
    if n_shards < world_size:
        raise DatasetError("--shards", f"{n_shards} shard(s) cannot be shared by {world_size} ranks",
                           "prepare the cache with a smaller --shard-size, or use fewer processes")
    return max(1, min(max(workers, 1), n_shards // world_size))


def plan_epoch(shards: list[ShardInfo], epoch: int, seed: int, world_size: int, workers: int,
               batch_size: int) -> EpochPlan:
    """Deal the shards of one epoch to every (rank, worker) stream; the same on every rank.

    Raises:
        DatasetError: when a stream would not fill a single batch.
    """
    per_rank = streams_per_rank(len(shards), world_size, workers)
    n_streams = world_size * per_rank
    order = np.random.default_rng([seed, epoch, 7]).permutation(len(shards))
    streams: list[list[ShardInfo]] = [[] for _ in range(n_streams)]
    totals = [0] * n_streams
    # Largest first onto the emptiest stream (stable under ties): balanced counts, so little is dropped.
    for i in sorted(order, key=lambda i: -shards[i].count):
        s = min(range(n_streams), key=lambda k: (totals[k], k))
        streams[s].append(shards[i])
        totals[s] += shards[i].count
    per_stream = min(totals) // batch_size
    if per_stream == 0:
        raise DatasetError("--batch-size", f"{batch_size} is more than a loader stream holds ({min(totals)} "
                           f"samples in {n_streams} streams)", "use a smaller batch size or fewer workers")
    return EpochPlan(epoch, streams, per_rank, per_stream)


def collate_raw(samples: list[RawSample], images: list[torch.Tensor] | None = None) -> dict[str, Any]:
    """Samples (log-mels already cropped) -> one raw batch of tensors; with ``images`` (their decoded
    (3, H, W) uint8 pixels) the batch carries ``image`` instead of the JPEG bytes."""
    common = {"mel": torch.from_numpy(np.stack([s.mel for s in samples])),
              "lon": torch.tensor([s.lon for s in samples], dtype=torch.float64),
              "lat": torch.tensor([s.lat for s in samples], dtype=torch.float64),
              "keys": [s.key for s in samples]}
    if images is not None:
        return {"image": torch.stack(images), **common}
    sizes = [len(s.jpeg) for s in samples]
    offsets = np.zeros(len(samples) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    jpeg = np.frombuffer(bytearray(b"".join(s.jpeg for s in samples)), dtype=np.uint8)
    return {"jpeg": torch.from_numpy(jpeg), "offsets": torch.from_numpy(offsets), **common}


class ShardBatches(IterableDataset):
    """An endless stream of raw batches for one rank (see the module docstring).

    Batch ``index`` within an epoch is ``j * workers + worker`` for the worker's j-th batch, which is the
    order a DataLoader's round robin delivers them in. ``start_step`` skips the batches a resumed run
    already took in ``start_epoch``.
    """

    def __init__(self, root: str | Path, shards: list[ShardInfo], cfg: LoaderConfig, rank: int = 0,
                 world_size: int = 1, start_epoch: int = 0, start_step: int = 0) -> None:
        super().__init__()
        if not shards:
            raise DatasetError(root, f"holds no {cfg.split!r} shards", "prepare the cache from data with that split")
        self.root = Path(root)
        self.shards = list(shards)
        self.cfg = cfg
        self.rank = rank
        self.world_size = world_size
        self.start_epoch = start_epoch
        self.start_step = start_step

    def plan(self, epoch: int) -> EpochPlan:
        return plan_epoch(self.shards, epoch, self.cfg.seed, self.world_size, self.cfg.workers, self.cfg.batch_size)

    def _samples(self, shards: list[ShardInfo], rng: np.random.Generator, skipped: Counter[str]) -> Iterator[RawSample]:
        def on_skip(reason: str, key: str) -> None:
            skipped[reason] += 1
            log.warning("skipped sample %s: %s", key, reason)

        while True:  # wraps only if damage left fewer samples than the index promised
            count = 0
            buf: list[RawSample] = []
            for shard in shards:
                for sample in iter_shard(self.root / shard.name, on_skip):
                    sample.mel = np.ascontiguousarray(random_time_crop(sample.mel, self.cfg.audio_frames, rng))
                    count += 1
                    if len(buf) < self.cfg.shuffle_buffer:
                        buf.append(sample)
                        continue
                    i = int(rng.integers(len(buf)))
                    buf[i], sample = sample, buf[i]
                    yield sample
            rng.shuffle(buf)  # type: ignore[arg-type]
            yield from buf
            if count == 0:
                raise DatasetError(self.root, f"no readable samples in {[s.name for s in shards]}",
                                   "rerun prepare to rebuild the damaged shards")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        epoch = self.start_epoch
        skip = self.start_step
        while True:
            plan = self.plan(epoch)
            nw = plan.workers_per_rank
            if worker >= nw:  # more DataLoader workers than streams: the extra ones stay idle
                return
            rng = np.random.default_rng([self.cfg.seed, epoch, self.rank, worker])
            skipped: Counter[str] = Counter()
            samples = self._samples(plan.stream(self.rank, worker), rng, skipped)
            first = math.ceil(max(skip - worker, 0) / nw)
            for j in range(plan.batches_per_stream):
                if self.cfg.decode == "workers" and j >= first:
                    # (A resumed run skips batches undecoded: exact unless a skipped one held a damaged JPEG.)
                    out = self._decoded_batch(samples, skipped)
                else:
                    batch = [next(samples) for _ in range(self.cfg.batch_size)]
                    if j < first:
                        continue
                    out = collate_raw(batch)
                out.update(epoch=epoch, index=j * nw + worker, skipped=dict(skipped))
                skipped.clear()
                yield out
            skip = 0
            epoch += 1

    def _decoded_batch(self, samples: Iterator[RawSample], skipped: Counter[str]) -> dict[str, Any]:
        """The next batch with its JPEGs decoded here; a damaged one is counted and the stream's next sample
        takes its place, so the batch size holds (the all-gather across ranks relies on it)."""
        from engine.shards.jpeg_decode import as_byte_tensor, decode_batch

        kept: list[RawSample] = []
        images: list[torch.Tensor] = []
        while len(kept) < self.cfg.batch_size:
            batch = [next(samples) for _ in range(self.cfg.batch_size - len(kept))]
            for sample, image in zip(batch, decode_batch([as_byte_tensor(s.jpeg) for s in batch], "cpu"), strict=True):
                if image is None:
                    skipped["unreadable image"] += 1
                    log.warning("skipped sample %s: unreadable image", sample.key)
                else:
                    kept.append(sample)
                    images.append(image)
        return collate_raw(kept, images)


def make_loader(dataset: ShardBatches, pin_memory: bool) -> DataLoader:
    """A DataLoader over whole raw batches (``batch_size=None``) with the dataset's worker count."""
    workers = dataset.plan(dataset.start_epoch).workers_per_rank if dataset.cfg.workers > 0 else 0
    # Decoded batches are large (256 x 3 x 256 x 256 bytes = 50 MB) and sit in shared memory: two per worker.
    ahead = 2 if dataset.cfg.decode == "workers" else 4
    return DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      prefetch_factor=ahead if workers else None, persistent_workers=False)


def iter_clip_batches(index: ShardIndex, split: str, batch_size: int,
                      device: torch.device | str) -> Iterator[dict[str, Any]]:
    """Whole clips of a split, in shard order, in the batch format of the engine's clip loader
    (``image`` uint8 regions decoded on ``device``, ``audio`` a list of (1, n_mels, T) float32 clips,
    ``lon``, ``lat``, ``key``, ``size``, ``skipped``) for validation with :func:`engine.embedding.embed_loader`.
    """
    from engine.shards.jpeg_decode import as_byte_tensor, decode_batch

    def flush(samples: list[RawSample], skipped: list[tuple[str, str, str]]) -> dict[str, Any]:
        images = decode_batch([as_byte_tensor(s.jpeg) for s in samples], device)
        good = [(s, img) for s, img in zip(samples, images, strict=True) if img is not None]
        skipped = skipped + [(s.key, "unreadable image", "damaged JPEG in the cache")
                             for s, img in zip(samples, images, strict=True) if img is None]
        batch: dict[str, Any] = {"skipped": skipped, "size": len(good)}
        if good:
            batch.update(image=torch.stack([img for _, img in good]),
                         audio=[torch.from_numpy(s.mel.astype(np.float32))[None] for s, _ in good],
                         lon=torch.tensor([s.lon for s, _ in good], dtype=torch.float64),
                         lat=torch.tensor([s.lat for s, _ in good], dtype=torch.float64),
                         key=[s.key for s, _ in good])
        return batch

    samples: list[RawSample] = []
    skipped: list[tuple[str, str, str]] = []

    def on_skip(reason: str, key: str) -> None:
        skipped.append((key, reason, reason))

    for shard in index.split_shards(split):
        for sample in iter_shard(index.path(shard), on_skip):
            samples.append(sample)
            if len(samples) == batch_size:
                yield flush(samples, list(skipped))
                samples = []
                skipped.clear()
    if samples or skipped:
        yield flush(samples, list(skipped))
