"""Training from a prepared cache through the GPU input pipeline, on one GPU or several (DDP).

``soundscape-engine train --cache CACHE`` (and ``torchrun --nproc-per-node N -m engine.cli train --cache
CACHE ...``) runs this loop instead of the per-sample loader of :mod:`engine.train.loop`. Everything that
defines the training is shared with that loop: the run config and presets, the encoders, the optimiser
and schedule, :class:`engine.losses.PairLoss` (which owns the all-gather across ranks), the batch
augmentation of :mod:`engine.augment`, the checkpoint payload, ``metrics.jsonl`` and the validation
protocol. What differs is how batches arrive (shards -> nvJPEG -> device augmentation, prefetched on a side
stream) and that no step waits for the host: losses and in-batch recall are summed on the device and read
every ``log_every`` steps, where a non-finite loss stops the run (the last good checkpoint is kept).

Under DDP each rank reads its own shards; ``train.batch_size`` is the global batch (each rank takes
``batch_size / world_size``), so the loss sees the same batch as on one GPU; only rank 0 writes the run
folder; a cancel (Ctrl-C) is agreed by all ranks at the next logging step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from engine.checkpoint import load_checkpoint, read_run_config, write_run_config
from engine.embedding import embed_loader
from engine.errors import Cancelled, CheckpointError, ConfigError, DatasetError, TrainingError
from engine.evaluate import retrieval_metrics, validation_summary
from engine.gpu.compute import ComputeConfig, DeviceMeter, PairModel, TrainStep, prepare_model
from engine.gpu.distributed import DistContext, cleanup_distributed, init_distributed
from engine.gpu.loader import LoaderConfig, ShardBatches, iter_clip_batches, make_loader
from engine.gpu.pipeline import DevicePipeline, PipelineConfig
from engine.losses import PairLoss, all_gather_with_grad
from engine.models import build_audio_encoder, build_image_encoder, load_torchvision_weights
from engine.progress import Job
from engine.shards.format import CacheIndex, read_index
from engine.train.config import RunConfig
from engine.train.metrics_log import MetricsLog
from engine.train.run_book import TrainResult, _score
from engine.train.run_book import torch_settings as _torch_settings
from engine.train.state import (
    Progress,
    build_optimizer,
    build_scheduler,
    checkpoint_payload,
    restore_state,
    save_state,
)

log = logging.getLogger(__name__)


def check_cache(index: CacheIndex, cfg: RunConfig) -> None:
    """Refuse a cache whose image region or audio differs from what the run config trains on."""
    region = index.geometry.region / index.geometry.source_size
    if abs(region - cfg.data.image_region) > 1e-6:
        raise ConfigError(f"--cache {index.root}", f"holds the central {region:.3g} of each image, the preset "
                          f"trains on {cfg.data.image_region:.3g}",
                          f"prepare again with --image-region {cfg.data.image_region}")
    mel = index.extra.get("log_mel", {})
    if mel and mel.get("front_end") not in (None, cfg.front_end.to_dict()):
        raise ConfigError(f"--cache {index.root}", "log-mels were made with another front-end config",
                          "prepare again with the run's preset (--preset)")
    if not index.split_shards("train"):
        raise DatasetError(index.root, "holds no train shards", "prepare it from a dataset with a train split")



def cache_dataset(index: CacheIndex) -> dict[str, Any]:
    """RUN/config.json's ``dataset`` fields a prepared cache tells (as the CPU loop writes them from the
    dataset itself): the source folder, its layout and kind, the audio source and the split rule."""
    from engine.data.source import dataset_kind

    path, layout = index.extra.get("source"), index.extra.get("layout")
    kind = index.extra.get("kind")  # caches prepared before it was recorded: told from the data if here
    if kind is None and path and layout and (layout == "soundingearth" or Path(path).exists()):
        kind = dataset_kind(path, layout)
    return {"path": path, "layout": layout, "kind": kind,
            "audio_source": (index.extra.get("log_mel") or {}).get("audio_source"),
            "split_rule": index.extra.get("split_rule")}

class _CacheTrainer:
    def __init__(self, cfg: RunConfig, index: CacheIndex, run_dir: Path, resume: bool, job: Job,
                 compute: ComputeConfig, ctx: DistContext, announce: Callable[[str], None]) -> None:
        self.cfg, self.index, self.run_dir, self.job, self.compute, self.ctx = cfg, index, run_dir, job, compute, ctx
        self.device = ctx.device
        self.ckpt_dir = run_dir / "checkpoints"
        payload = self._check_run_folder(resume)
        if cfg.train.batch_size % ctx.world_size:
            raise ConfigError("--batch-size", f"{cfg.train.batch_size} does not split over {ctx.world_size} "
                              "processes", f"use a multiple of {ctx.world_size}")
        self.batch = cfg.train.batch_size // ctx.world_size
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank (DDP also broadcasts)
        image, audio = build_image_encoder(cfg.model), build_audio_encoder(cfg.model)
        if cfg.image_weights and payload is None:
            load_torchvision_weights(image, cfg.image_weights)
        self.net, self.model = prepare_model(PairModel(image, audio), self.device, compute, ddp=ctx.distributed)
        self.dataset = ShardBatches(index.root, index.split_shards("train"), LoaderConfig(
            batch_size=self.batch, audio_frames=cfg.crop_frames, workers=cfg.data.num_workers, seed=cfg.train.seed),
            rank=ctx.rank, world_size=ctx.world_size)
        self.steps_per_epoch = self.dataset.plan(0).steps
        self.total_steps = cfg.train.epochs * self.steps_per_epoch
        self.optimizer = build_optimizer(list(self.model.parameters()), cfg.train)
        self.scheduler = build_scheduler(self.optimizer, cfg.train, self.total_steps)
        gather = all_gather_with_grad if ctx.distributed else None
        self.step = TrainStep(self.net, PairLoss(cfg.train.loss_config, gather), self.optimizer, compute, self.device,
                              scheduler=self.scheduler, grad_clip=cfg.train.grad_clip)
        self.progress, self.metrics = Progress(), {}
        self._skipped_before: dict[str, int] = {}
        if payload is not None:
            self.progress = restore_state(payload, self.model.image_encoder, self.model.audio_encoder,
                                          self.optimizer, self.scheduler)
            self.metrics = payload.get("metrics") or {}
            self._skipped_before = dict(self.progress.skipped)
        self.log: MetricsLog | None = None
        if ctx.is_main:
            config = cfg.to_dict()
            ground = index.extra.get("image_ground_m")
            # As the CPU loop: what the exporter records as the bundle's ground_size_m.
            config["data"]["ground_size_m"] = round(ground * cfg.view_fraction, 3) if ground else None
            write_run_config(run_dir, {**config, "dataset": {**cache_dataset(index),
                "cache": str(index.root.resolve()), "pairs": dict(index.counts), "skipped": dict(index.skipped)},
                "compute": {
                "bf16": compute.bf16, "channels_last": compute.channels_last, "compile": compute.compile,
                "world_size": ctx.world_size}})
            self.log = MetricsLog(run_dir, resume_step=self.progress.step if payload is not None else None)
        announce(f"{index.root}: cache of {sum(index.counts.values()):,} pairs ({', '.join(f'{k} {v:,}' for k, v in index.counts.items())}); "
                 f"{ctx.world_size} process(es) x batch {self.batch} on {self.device}")

    def _check_run_folder(self, resume: bool) -> dict[str, Any] | None:
        last = self.ckpt_dir / "last.pt"
        if resume:
            if not last.is_file():
                raise CheckpointError(f"--resume {last}", "no checkpoint to resume from",
                                      "start a new run without --resume, or name the run folder with --out")
            read_run_config(self.run_dir)
            return load_checkpoint(last)
        if self.ctx.is_main:
            if (self.run_dir / "config.json").exists() or last.exists():
                raise ConfigError(f"--out {self.run_dir}", "already holds a run",
                                  "pass --resume to continue it, or choose a new --out folder")
            self.run_dir.mkdir(parents=True, exist_ok=True)
        return None

    # -- helpers -------------------------------------------------------------------------------------
    def _agree_to_stop(self) -> bool:
        """Whether any rank was cancelled (one small all-reduce, only at logging steps)."""
        flag = torch.tensor([1.0 if self.job.cancelled else 0.0], device=self.device)
        if self.ctx.distributed:
            dist.all_reduce(flag)
        return bool(flag.item() > 0)

    def _save(self, name: str) -> Path:
        path = self.ckpt_dir / f"{name}.pt"
        if not self.ctx.is_main:
            return path
        payload = checkpoint_payload(self.model.image_encoder, self.model.audio_encoder, self.optimizer,
                                     self.scheduler, self.progress, self.metrics, self.cfg.to_dict())
        try:
            save_state(path, payload)
        except OSError as err:
            raise CheckpointError(path, f"could not be written ({err.strerror or err})",
                                  "free some disk space and --resume; the previous checkpoint is intact") from None
        return path

    def _validate(self) -> dict[str, Any] | None:
        if not self.ctx.is_main or not self.index.split_shards("val"):
            return None
        image, audio = self.model.image_encoder, self.model.audio_encoder
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
            last = self.ckpt_dir / "last.pt"
            raise TrainingError(self.run_dir, f"the loss became {values.get('loss')} near step {self.progress.step}; "
                                f"training stopped and the last good checkpoint {last} is kept",
                                "lower the learning rate (train.lr in the preset) or check the data")
        values["samples_per_s"] = samples * self.ctx.world_size / max(1e-9, time.perf_counter() - since)
        return values

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, p = self.cfg, self.progress
        if self.log is not None:
            self.log.event("start", epochs=cfg.train.epochs, steps_per_epoch=self.steps_per_epoch,
                           total_steps=self.total_steps, preset=cfg.preset, data=str(self.index.root),
                           n_train=self.index.counts.get("train", 0), n_val=self.index.counts.get("val", 0),
                           n_test=self.index.counts.get("test", 0), batch_size=cfg.train.batch_size,
                           device=str(self.device), world_size=self.ctx.world_size,
                           resumed_from_step=p.step if p.step else None)
        self.dataset.start_epoch, self.dataset.start_step = p.epoch, p.epoch_step
        loader = iter(make_loader(self.dataset, pin_memory=self.device.type == "cuda"))
        pipeline = DevicePipeline(loader, self.device, PipelineConfig(
            augment=cfg.augment, image_size=cfg.model.image_size, seed=cfg.train.seed,
            channels_last=self.compute.channels_last and self.device.type == "cuda"), rank=self.ctx.rank)
        batches = iter(pipeline)
        self._session = (time.perf_counter(), p.step)
        try:
            for epoch in range(p.epoch + 1, cfg.train.epochs + 1):
                self._epoch(epoch, batches, pipeline)
        except Cancelled:
            path = self._save("last")
            self._finish("interrupted", f"stopped at epoch {p.epoch + 1}, step {p.step}; resume with --resume "
                         f"(saved {path})")
            raise
        except TrainingError as err:
            self._finish("failed", str(err))
            raise
        except Exception as err:
            self._finish("failed", f"{type(err).__name__}: {err}")
            raise
        finally:
            pipeline.close()
        self._finish("finished", f"trained {p.epoch} epochs ({p.step} steps)")
        return TrainResult(self.run_dir, "finished", p.epoch, p.step, p.best_epoch, self.metrics,
                           f"{self.index.root}: {self.index.counts}")

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
                self._log_step(epoch, values)
                meter, since, window_samples = DeviceMeter(), time.perf_counter(), 0
                if self._agree_to_stop():
                    raise Cancelled()
            if self.ctx.is_main:
                self.job.report(p.step, self.total_steps, f"epoch {epoch}/{cfg.train.epochs}")
        for reason, n in pipeline.skipped.items():  # the pipeline counts since this session started
            p.skipped[reason] = self._skipped_before.get(reason, 0) + int(n)
        val = self._validate()
        if self.ctx.distributed:
            dist.barrier()
        train_loss = p.loss_sum / max(1, p.loss_count)
        p.epoch, p.epoch_step, p.loss_sum, p.loss_count = epoch, 0, 0.0, 0
        best = False
        self.metrics = {"train_loss": train_loss, "val": val}
        if val is not None and (not p.best_score or _score(val) < p.best_score):
            p.best_score, p.best_epoch, best = _score(val), epoch, True
        self._save("last")
        if best:
            self._save("best")
        if self.log is not None:
            self.log.event("epoch", epoch=epoch, step=p.step, train_loss=train_loss, best=best, val=val)

    def _log_step(self, epoch: int, values: dict[str, float]) -> None:
        if self.log is None:
            return
        p = self.progress
        started, first_step = self._session
        eta = (time.perf_counter() - started) / max(1, p.step - first_step) * max(0, self.total_steps - p.step)
        fields = {"epoch": epoch, "step": p.step, "loss": values["loss"],
                  "r1_image_to_audio": values["r1_image_to_audio"], "r1_audio_to_image": values["r1_audio_to_image"],
                  "lr": self.optimizer.param_groups[0]["lr"], "samples_per_s": values["samples_per_s"], "eta_s": eta}
        self.log.event("step", **fields)
        self.log.scalars(p.step, {f"train/{k}": v for k, v in fields.items() if k not in ("epoch", "step", "eta_s")})

    def _finish(self, status: str, message: str) -> None:
        if self.log is None:
            return
        last = self.ckpt_dir / "last.pt"
        self.log.event("end", status=status, message=message, checkpoint=str(last) if last.exists() else None,
                       epoch=self.progress.epoch, step=self.progress.step, best_epoch=self.progress.best_epoch,
                       skipped_while_training=self.progress.skipped)
        self.log.close()
        self.log = None
        (log.info if status == "finished" else log.warning)("%s: %s", status, message)


def train_from_cache(cfg: RunConfig, cache: str | Path, run_dir: str | Path, *, resume: bool = False,
                     job: Job | None = None, compute: ComputeConfig | None = None,
                     announce: Callable[[str], None] | None = None) -> TrainResult:
    """Train the encoders of ``cfg`` from a prepared cache with the GPU input pipeline.

    Args:
        cfg: the resolved run config (a preset plus overrides).
        cache: a folder made by ``soundscape-engine prepare``.
        run_dir: the run folder (new, or the run to resume).
        resume: continue ``run_dir/checkpoints/last.pt``.
        job: progress and cancellation.
        compute: bf16, channels_last, torch.compile.
        announce: receives the one-line data summary (the CLI prints it).

    Raises:
        Cancelled: the job was cancelled (``last`` saved by rank 0).
        TrainingError: the loss became NaN/inf.
        UserInputError: a bad cache, option or run folder.
    """
    ctx = init_distributed(cfg.train.device)
    try:
        index = read_index(cache)
        check_cache(index, cfg)
        with _torch_settings(cfg):  # the run's threads and determinism, as the CPU path sets them
            trainer = _CacheTrainer(cfg, index, Path(run_dir), resume, job or Job(), compute or ComputeConfig(),
                                    ctx, announce if ctx.is_main and announce else (lambda text: None))
            return trainer.run()
    finally:
        if ctx.distributed:
            cleanup_distributed()
