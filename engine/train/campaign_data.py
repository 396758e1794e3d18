"""Training on a recorder campaign: random windows of each site's hours, site by site.

An epoch is ``data.samples_per_site`` rounds; each round visits every training site once, in a seeded
order, cut into batches of at most ``train.batch_size`` sites. A batch never holds a site twice, because
the batch-all triplet loss would push a site's two windows apart as if they were unrelated. Each sample is
the site's chip and a random window of its audio; the window (file and offset) is a pure function of
(seed, epoch, round, site), so epochs are the same with any number of workers and after a resume.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from engine.campaign.pairs import CampaignSource, open_campaign_source
from engine.config.run import RunConfig
from engine.data.cache import default_cache_root
from engine.data.datasets import PairDataset, collate_pairs, quiet_worker
from engine.errors import AudioFileError, DatasetError
from engine.progress import Job


def chip_ground_m(cfg: RunConfig) -> float | None:
    """The ground width of a campaign chip: the view's ground width over the evaluation scale (the encoder
    sees the chip's central ``eval_scale``)."""
    view = cfg.data.ground_size_m
    return view / cfg.augment.eval_scale if view else None


def open_campaign(data_dir: str | Path, cfg: RunConfig, cache_root: Path | None = None,
                  job: Job | None = None) -> CampaignSource:
    """The campaign as a :class:`CampaignSource`, chips cut at the run's ground size (cached)."""
    return open_campaign_source(data_dir, cfg.data, cfg.front_end, chip_ground_m(cfg) or 0.0,
                                cache_root or default_cache_root(), job=job)


class CampaignDataset(PairDataset):
    """Training samples of a campaign: position ``round * n_sites + k`` is the k-th training site of a round."""

    def __init__(self, source: CampaignSource, indices: Sequence[int], seed: int = 0) -> None:
        super().__init__(source, source.records, indices, crop_frames=None, seed=seed)
        self.source = source
        self.rounds = source.data_cfg.samples_per_site

    def __len__(self) -> int:
        return len(self.indices) * self.rounds

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        position, epoch = item if isinstance(item, tuple) else (item, self.epoch)
        i = self.indices[position % len(self.indices)]
        record = self.records[i]
        rng = np.random.default_rng([self.seed, epoch, position, i])
        try:
            mel = self.source.training_log_mel(i, rng)
        except AudioFileError as err:
            return {"error": str(err), "reason": "unreadable audio", "key": record.key, "index": i}
        return {
            "image": torch.from_numpy(np.ascontiguousarray(self.source.image(i).transpose(2, 0, 1))),
            "audio": torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))[None],
            "lon": record.lon, "lat": record.lat, "key": record.key, "index": i,
        }


class SiteRoundSampler(Sampler[list[tuple[int, int]]]):
    """Batches of distinct sites: per round a seeded permutation of the sites, cut into
    ``ceil(n / batch_size)`` batches of nearly equal size (no site is left out of a round).

    The interface of :class:`engine.data.datasets.EpochBatchSampler` (``set_epoch``,
    ``batches_per_epoch``, a mid-epoch start).
    """

    def __init__(self, n_sites: int, rounds: int, batch_size: int, seed: int) -> None:
        self.n, self.rounds, self.batch_size, self.seed = n_sites, rounds, batch_size, seed
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def per_round(self) -> int:
        return max(1, math.ceil(self.n / self.batch_size)) if self.n else 0

    def batches_per_epoch(self) -> int:
        return self.per_round() * self.rounds

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.start_batch)

    def all_batches(self) -> list[list[tuple[int, int]]]:
        """Every batch of the epoch as (position, epoch) lists."""
        out = []
        for r in range(self.rounds):
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch * 101 + r)
            order = torch.randperm(self.n, generator=g).tolist()
            for part in np.array_split(np.array(order, dtype=np.int64), self.per_round()):
                out.append([(r * self.n + int(k), self.epoch) for k in part])
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        yield from self.all_batches()[self.start_batch:]


def campaign_train_loader(source: CampaignSource, indices: Sequence[int],
                          cfg: RunConfig) -> tuple[DataLoader, SiteRoundSampler, CampaignDataset]:
    """The training loader of a campaign (see module docstring)."""
    if len(indices) < 2:
        raise DatasetError(source.table, f"the train split has {len(indices)} usable sites",
                           "training needs at least 2; hold out fewer sites (--holdout-sites)")
    dataset = CampaignDataset(source, indices, seed=cfg.train.seed)
    sampler = SiteRoundSampler(len(indices), dataset.rounds, cfg.train.batch_size, cfg.train.seed)
    workers = cfg.data.num_workers
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate_pairs,
                        worker_init_fn=quiet_worker if workers else None, pin_memory=torch.cuda.is_available(),
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    return loader, sampler, dataset
