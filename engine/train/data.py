"""Opening a run's data: scan the layout, draw splits, build or open the decode cache, make loaders."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from engine.campaign import is_campaign
from engine.config.run import RunConfig
from engine.data.cache import open_cache
from engine.data.datasets import EpochBatchSampler, PairDataset, PairStore, collate_pairs, quiet_worker
from engine.data.records import SkipReport
from engine.data.source import PairSource, open_source
from engine.data.splits import SPLIT_NAMES
from engine.errors import DatasetError
from engine.progress import Job

log = logging.getLogger(__name__)


@dataclass
class RunData:
    """A dataset ready for training or evaluation."""

    source: PairSource
    store: PairStore
    report: SkipReport
    splits: dict[str, list[int]]  # split name -> usable record indices

    def describe(self) -> str:
        sizes = ", ".join(f"{name} {len(idx):,}" for name, idx in self.splits.items())
        return f"{self.source.table}: {self.report.describe()} ({sizes}; split rule {self.source.split_rule})"


def open_run_data(data_dir: str | Path, cfg: RunConfig, cache_root: Path | None = None, job: Job | None = None,
                  use_cache: bool | None = None, device: torch.device | None = None) -> RunData:
    """Scan ``data_dir`` as ``cfg.data`` says, and decode it into the cache when the config asks.

    On a CUDA ``device`` the cache's log-mels of audio files are computed there (torchaudio, held to the
    front-end by tests/engine/test_device_log_mel.py); the loader processes only decode and resample.

    Unreadable files found while caching are added to the skip report and left out of the splits.
    """
    # The split does not follow --seed: runs with different seeds are compared on the same test pairs.
    if is_campaign(Path(data_dir)):  # one record per site; chips cached, windows drawn (no pair cache)
        from engine.train.campaign_data import open_campaign

        campaign = open_campaign(data_dir, cfg, cache_root, job)
        data = RunData(campaign, campaign, campaign.report, {name: campaign.indices(name) for name in SPLIT_NAMES})
        log.info("%s", data.describe())
        return data
    source = open_source(data_dir, cfg.data, cfg.front_end)
    report = source.report
    usable = [True] * len(source)
    store: PairStore = source
    if cfg.data.cache if use_cache is None else use_cache:
        cache = open_cache(source, cache_root, workers=max(1, cfg.data.cache_workers), job=job,
                           log_mel_fn=device_log_mel_fn(cfg, device) if device is not None else None)
        for i, error in enumerate(cache.errors):
            if error is not None:
                usable[i] = False
                report.skip(error.split(":", 1)[0], error.split(":", 1)[1].strip())
        store = cache
    splits = {name: [i for i in source.indices(name) if usable[i]] for name in SPLIT_NAMES}
    data = RunData(source, store, report, splits)
    log.info("%s", data.describe())
    return data


def device_log_mel_fn(cfg: RunConfig, device: torch.device) -> Callable[[np.ndarray], np.ndarray] | None:
    """The front-end's log-mel on a CUDA device for the decode cache, or None on other devices (the workers'
    numpy front-end is as fast there, and stays the reference)."""
    if device.type != "cuda":
        return None
    from engine.device_log_mel import DeviceLogMel

    module = DeviceLogMel(cfg.front_end).to(device)

    def log_mel(samples: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(samples).to(device)).cpu().numpy()

    return log_mel


def train_loader(data: RunData, cfg: RunConfig) -> tuple[DataLoader, EpochBatchSampler, PairDataset]:
    """The training loader: random crops, a seeded permutation per epoch, full batches."""
    indices = data.splits["train"]
    if data.source.layout == "campaign":
        from engine.train.campaign_data import campaign_train_loader

        return campaign_train_loader(data.source, indices, cfg)
    if len(indices) < 2:
        raise DatasetError(data.source.table, f"the train split has {len(indices)} usable pairs",
                           "training needs at least 2; check the split column or --split-rule")
    dataset = PairDataset(data.store, data.source.records, indices, crop_frames=cfg.crop_frames, seed=cfg.train.seed)
    sampler = EpochBatchSampler(len(dataset), cfg.train.batch_size, cfg.train.seed)
    workers = cfg.data.num_workers
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate_pairs,
                        worker_init_fn=quiet_worker if workers else None, pin_memory=torch.cuda.is_available(),
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    return loader, sampler, dataset


def clip_loader(data: RunData, split: str, cfg: RunConfig, batch_size: int = 32) -> DataLoader:
    """Whole clips of a split in record order (for validation and evaluation)."""
    dataset = PairDataset(data.store, data.source.records, data.splits[split], crop_frames=None)
    workers = cfg.data.num_workers
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate_pairs,
                      worker_init_fn=quiet_worker if workers else None)
