"""Training from prepared shards through the shard pipeline, on one GPU or several (DDP), or on CPU.

``soundscape-engine train --shards SHARDS`` (and ``torchrun --nproc-per-node N -m engine.cli train --shards
SHARDS ...``) runs this loop instead of the per-sample loader of :mod:`engine.train.loop`. Everything that
defines the training is shared with that loop: the run config and presets, the encoders, the optimiser
and schedule, :class:`engine.losses.PairLoss` (which owns the all-gather across ranks), the batch
augmentation of :mod:`engine.augment`, the validation protocol, and the run's bookkeeping (run folder,
config.json, checkpoints, ``metrics.jsonl`` and TensorBoard: :class:`engine.train.run_book.RunBook`, whose
:attr:`~engine.train.run_book.RunBook.is_main` this loop ties to rank 0). What differs is how batches
arrive (shards -> nvJPEG -> device augmentation, prefetched on a side stream) and that no step waits for the
host: losses and in-batch recall are summed on the device and read every ``log_every`` steps, where a
non-finite loss stops the run (the last good checkpoint is kept).

Under DDP each rank reads its own shards; ``train.batch_size`` is the global batch (each rank takes
``batch_size / world_size``), so the loss sees the same batch as on one GPU; only rank 0 writes the run
folder; a cancel (Ctrl-C) is agreed by all ranks at the next logging step.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from engine.config.run import RunConfig
from engine.embedding import embed_loader
from engine.errors import Cancelled, ConfigError, DatasetError
from engine.evaluate import retrieval_metrics, validation_summary
from engine.losses import PairLoss, all_gather_with_grad
from engine.models import build_audio_encoder, build_image_encoder, load_torchvision_weights
from engine.progress import Job
from engine.shard_training.compute import ComputeConfig, DeviceMeter, PairModel, TrainStep, prepare_model
from engine.shard_training.distributed import DistContext, cleanup_distributed, init_distributed
from engine.shard_training.loader import LoaderConfig, ShardBatches, iter_clip_batches, make_loader
from engine.shard_training.pipeline import DevicePipeline, PipelineConfig
from engine.shards.format import ShardIndex, read_index
from engine.train.run_book import RunBook, TrainResult, run_folder_lock, torch_settings
from engine.train.state import build_optimizer, build_scheduler

log = logging.getLogger(__name__)  # the epoch and end lines: RunBook logs through this module's logger


def check_shards(index: ShardIndex, cfg: RunConfig) -> None:
    """Refuse a cache whose image region or audio differs from what the run config trains on."""
    region = index.geometry.region / index.geometry.source_size
    if abs(region - cfg.data.image_region) > 1e-6:
        raise ConfigError(f"--shards {index.root}", f"holds the central {region:.3g} of each image, the preset "
                          f"trains on {cfg.data.image_region:.3g}",
                          f"prepare again with --image-region {cfg.data.image_region}")
    mel = index.extra.get("log_mel", {})
    if mel and mel.get("front_end") not in (None, cfg.front_end.to_dict()):
        raise ConfigError(f"--shards {index.root}", "log-mels were made with another front-end config",
                          "prepare again with the run's preset (--preset)")
    if not index.split_shards("train"):
        raise DatasetError(index.root, "holds no train shards", "prepare it from a dataset with a train split")



def shards_dataset(index: ShardIndex) -> dict[str, Any]:
    """RUN/config.json's ``dataset`` fields prepared shards tell (as the CPU loop writes them from the
    dataset itself): the source folder, its layout and kind, the audio source and the split rule."""
    from engine.data.source import dataset_kind

    path, layout = index.extra.get("source"), index.extra.get("layout")
    kind = index.extra.get("kind")  # caches prepared before it was recorded: told from the data if here
    if kind is None and path and layout and (layout == "soundingearth" or Path(path).exists()):
        kind = dataset_kind(path, layout)
    return {"path": path, "layout": layout, "kind": kind,
            "audio_source": (index.extra.get("log_mel") or {}).get("audio_source"),
            "split_rule": index.extra.get("split_rule")}

class _ShardTrainer(RunBook):
    """One training session from prepared shards, on one GPU or as one rank of several."""

    def __init__(self, cfg: RunConfig, index: ShardIndex, run_dir: Path, resume: bool, job: Job,
                 compute: ComputeConfig, ctx: DistContext, announce: Callable[[str], None],
                 jpeg_decode: str = "device") -> None:
        super().__init__(cfg, run_dir, job)
        self.index, self.compute, self.ctx, self.jpeg_decode = index, compute, ctx, jpeg_decode
        self.device = ctx.device
        if cfg.train.batch_size % ctx.world_size:  # refused before the run folder is touched
            raise ConfigError("--batch-size", f"{cfg.train.batch_size} does not split over {ctx.world_size} "
                              "processes", f"use a multiple of {ctx.world_size}")
        payload = self._check_run_folder(resume)
        self.batch = cfg.train.batch_size // ctx.world_size
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank (DDP also broadcasts)
        image, audio = build_image_encoder(cfg.model), build_audio_encoder(cfg.model)
        if cfg.image_weights and payload is None:
            load_torchvision_weights(image, cfg.image_weights)
        self.net, self.model = prepare_model(PairModel(image, audio), self.device, compute, ddp=ctx.distributed)
        self.image_encoder, self.audio_encoder = self.model.image_encoder, self.model.audio_encoder
        self.dataset = ShardBatches(index.root, index.split_shards("train"), LoaderConfig(
            batch_size=self.batch, audio_frames=cfg.crop_frames, workers=cfg.data.num_workers, seed=cfg.train.seed,
            decode=jpeg_decode),
            rank=ctx.rank, world_size=ctx.world_size)
        self.steps_per_epoch = self.dataset.plan(0).steps
        self.total_steps = cfg.train.epochs * self.steps_per_epoch
        self.optimizer = build_optimizer(list(self.model.parameters()), cfg.train)
        self.scheduler = build_scheduler(self.optimizer, cfg.train, self.total_steps)
        gather = all_gather_with_grad if ctx.distributed else None
        self.step = TrainStep(self.net, PairLoss(cfg.train.loss_config, gather), self.optimizer, compute, self.device,
                              scheduler=self.scheduler, grad_clip=cfg.train.grad_clip)
        if payload is not None:
            self._restore(payload)
        self._skipped_before = dict(self.progress.skipped)
        self._open_run(payload is not None, index.extra.get("image_ground_m"), {
            "dataset": {**shards_dataset(index), "cache": str(index.root.resolve()), "pairs": dict(index.counts),
                        "skipped": dict(index.skipped)},
            "compute": {"bf16": compute.bf16, "channels_last": compute.channels_last, "compile": compute.compile,
                        "compile_mode": compute.compile_mode, "compile_scope": compute.compile_scope,
                        "world_size": ctx.world_size, "jpeg_decode": jpeg_decode}})
        announce(f"{index.root}: cache of {sum(index.counts.values()):,} pairs ({', '.join(f'{k} {v:,}' for k, v in index.counts.items())}); "
                 f"{ctx.world_size} process(es) x batch {self.batch} on {self.device}")

    @property
    def is_main(self) -> bool:
        return self.ctx.is_main

    def release(self) -> None:
        """Drop the DDP wrapper, its reducer and everything holding them (before the process group goes)."""
        for name in ("step", "net", "optimizer", "scheduler", "model", "image_encoder", "audio_encoder"):
            self.__dict__.pop(name, None)

    # -- helpers -------------------------------------------------------------------------------------
    def _agree_to_stop(self) -> bool:
        """Whether any rank was cancelled (one small all-reduce, only at logging steps)."""
        flag = torch.tensor([1.0 if self.job.cancelled else 0.0], device=self.device)
        if self.ctx.distributed:
            dist.all_reduce(flag)
        return bool(flag.item() > 0)

    def _validate(self) -> dict[str, Any] | None:
        if not self.ctx.is_main or not self.index.split_shards("val"):
            return None
        image, audio = self.image_encoder, self.audio_encoder
        image.eval()
        audio.eval()
        try:
            emb = embed_loader(image, audio, iter_clip_batches(self.index, "val", 64, self.device),
                               self.cfg.model.image_size, self.cfg.augment.eval_scale, self.cfg.front_end,
                               self.device, job=self.job)
        finally:
            image.train()
            audio.train()
        if len(emb.keys) < 2:
            return None
        return validation_summary(retrieval_metrics(emb.image, emb.audio, emb.lon, emb.lat, protocol="paper"))

    def _read_window(self, meter: DeviceMeter, since: float, samples: int) -> dict[str, float]:
        values = meter.read()
        if not all(v == v and abs(v) != float("inf") for v in values.values()):
            raise self._loss_error(values.get("loss"), f"near step {self.progress.step}")
        values["samples_per_s"] = samples * self.ctx.world_size / max(1e-9, time.perf_counter() - since)
        return values

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, p = self.cfg, self.progress
        self._log_start(str(self.index.root), self.index.counts, world_size=self.ctx.world_size)
        self.dataset.start_epoch, self.dataset.start_step = p.epoch, p.epoch_step
        loader = iter(make_loader(self.dataset, pin_memory=self.device.type == "cuda"))
        pipeline = DevicePipeline(loader, self.device, PipelineConfig(
            augment=cfg.augment, image_size=cfg.model.image_size, seed=cfg.train.seed,
            channels_last=self.compute.channels_last and self.device.type == "cuda",
            # Measured on an H100 (bench/pipeline_probe.py): a producer thread suits the device decode; with
            # the readers decoding, the training thread launching the next batch itself is faster.
            producer="launch" if self.jpeg_decode == "workers" else "thread"), rank=self.ctx.rank)
        batches = iter(pipeline)
        try:
            self._run_epochs(lambda epoch: self._epoch(epoch, batches, pipeline))
        finally:
            pipeline.close()
        return self._result(f"{self.index.root}: {self.index.counts}")

    def _epoch(self, epoch: int, batches: Any, pipeline: DevicePipeline) -> None:
        cfg, p = self.cfg, self.progress
        steps = self.dataset.plan(epoch - 1).steps
        meter, since, window_samples = DeviceMeter(), time.perf_counter(), 0
        self.model.train()
        while p.epoch_step < steps:
            batch = next(batches)
            meter.add(self.step(batch.images, batch.mels))
            p.step += 1
            p.epoch_step += 1
            window_samples += batch.images.shape[0]
            if p.step % cfg.train.log_every == 0 or p.epoch_step == steps:
                n = meter.count
                values = self._read_window(meter, since, window_samples)
                p.loss_sum += values["loss"] * n
                p.loss_count += n
                self._log_step(values["loss"], values["r1_image_to_audio"], values["r1_audio_to_image"],
                               values["samples_per_s"])
                meter, since, window_samples = DeviceMeter(), time.perf_counter(), 0
                if self._agree_to_stop():
                    raise Cancelled()
            if self.ctx.is_main:
                self.job.report(p.step, self.total_steps, f"epoch {epoch}/{cfg.train.epochs}")
        for reason, n in pipeline.skipped.items():  # the pipeline counts since this session started
            p.skipped[reason] = self._skipped_before.get(reason, 0) + int(n)
        val = self._validated(self._validate)
        if self.ctx.distributed:
            dist.barrier()
        self._end_epoch(epoch, val)


def train_from_shards(cfg: RunConfig, shards: str | Path, run_dir: str | Path, *, resume: bool = False,
                      job: Job | None = None, compute: ComputeConfig | None = None,
                      announce: Callable[[str], None] | None = None, jpeg_decode: str = "device") -> TrainResult:
    """Train the encoders of ``cfg`` from prepared shards with the shard pipeline.

    Args:
        cfg: the resolved run config (a preset plus overrides).
        shards: a folder made by ``soundscape-engine prepare``.
        run_dir: the run folder (new, or the run to resume).
        resume: continue ``run_dir/checkpoints/last.pt``.
        job: progress and cancellation.
        compute: bf16, channels_last, torch.compile.
        announce: receives the one-line data summary (the CLI prints it).
        jpeg_decode: ``device`` (nvJPEG in the device pipeline) or ``workers`` (the loader processes).

    Raises:
        Cancelled: the job was cancelled (``last`` saved by rank 0).
        TrainingError: the loss became NaN/inf.
        UserInputError: a bad cache, option or run folder.
    """
    ctx = init_distributed(cfg.train.device)
    trainer: _ShardTrainer | None = None
    clean = False
    try:
        index = read_index(shards)
        check_shards(index, cfg)
        # Rank 0 holds RUN/.lock; the run's threads and determinism as the CPU path sets them.
        with run_folder_lock(Path(run_dir), ctx.is_main), torch_settings(cfg):
            trainer = _ShardTrainer(cfg, index, Path(run_dir), resume, job or Job(), compute or ComputeConfig(),
                                    ctx, announce if ctx.is_main and announce else (lambda text: None), jpeg_decode)
            result = trainer.run()
        clean = True
        return result
    finally:
        if ctx.distributed:
            # Teardown order: the DDP wrapper and its reducer first (also those a traceback's frames hold),
            # then a barrier on a clean end, then the process group (engine.shard_training.distributed).
            if trainer is not None:
                trainer.release()
            trainer = None
            error = sys.exc_info()[1]
            if error is not None:
                traceback.clear_frames(error.__traceback__)
            cleanup_distributed(ctx, synchronize=clean)
