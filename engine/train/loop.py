"""The training loop: epochs of augmented batches, validation, checkpoints, logs, clean stops.

``train(cfg, data_dir, run_dir)`` runs a whole training; see ``soundscape-engine train --help``.
It stops cleanly when its :class:`~engine.progress.Job` is cancelled (the CLI cancels it on
Ctrl-C/SIGINT; the app sends SIGINT): the current state is saved as ``last`` and the log ends with
status ``interrupted``; ``--resume`` continues exactly there. A NaN or infinite loss stops the run
before the bad step touches the weights, keeps the last good checkpoint and ends with ``failed``.
What the run writes is :class:`engine.train.run_book.RunBook`'s, shared with ``train --shards``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.augment import augment_images, mask_log_mels, step_generator
from engine.config.run import RunConfig
from engine.data.source import image_ground_m
from engine.device import resolve_device
from engine.embedding import embed_loader
from engine.errors import Cancelled, UserInputError
from engine.evaluate import retrieval_metrics, validation_summary
from engine.losses import Gather, PairLoss, in_batch_recall_at_1
from engine.models import build_audio_encoder, build_image_encoder, load_torchvision_weights
from engine.progress import Job
from engine.train.data import RunData, clip_loader, open_run_data, train_loader
from engine.train.init import load_init_weights, set_trainable, trainable_at
from engine.train.metrics_log import MetricsLog
from engine.train.run_book import RunBook, TrainResult, run_folder_lock, torch_settings
from engine.train.state import build_optimizer, build_scheduler

log = logging.getLogger(__name__)


def validation_metrics(image_encoder: torch.nn.Module, audio_encoder: torch.nn.Module, data: RunData, split: str,
                       cfg: RunConfig, device: torch.device, job: Job | None = None) -> dict[str, Any] | None:
    """Retrieval metrics (paper protocol) on whole clips of a split, or None with fewer than 2 pairs."""
    if len(data.splits[split]) < 2:
        return None
    image_encoder.eval()
    audio_encoder.eval()
    emb = embed_loader(image_encoder, audio_encoder, clip_loader(data, split, cfg), cfg.model.image_size,
                       cfg.augment.eval_scale, cfg.front_end, device, job=job)
    if len(emb.keys) < 2:
        return None
    return validation_summary(retrieval_metrics(emb.image, emb.audio, emb.lon, emb.lat, protocol="paper"))


class _Trainer(RunBook):
    """One training session (a fresh start or a resume) on per-sample batches, on any device."""

    stops = (Cancelled, KeyboardInterrupt)  # a second Ctrl-C too: _in_step says whether the weights are whole

    def __init__(self, cfg: RunConfig, data_dir: Path, run_dir: Path, resume: bool, job: Job,
                 cache_root: Path | None, gather: Gather | None, announce: Callable[[str], None]) -> None:
        super().__init__(cfg, run_dir, job)
        self.data_dir, self.announce = data_dir, announce
        self.device = resolve_device(cfg.train.device)
        self._in_step = False
        payload = self._check_run_folder(resume)
        try:
            self._setup(payload, cache_root, gather)
        except (Exception, KeyboardInterrupt) as err:  # Cancelled is an Exception too
            # The app tails metrics.jsonl: a run that fails before its first step still ends its log.
            interrupted = isinstance(err, (Cancelled, KeyboardInterrupt))
            if self.is_main:
                resume_step = int(payload.get("step", 0)) if payload is not None else None
                try:
                    log_file = MetricsLog(run_dir, resume_step=resume_step, tensorboard=False)
                    log_file.event("end", status="interrupted" if interrupted else "failed",
                                   message="stopped while preparing the data" if interrupted else str(err),
                                   checkpoint=None)
                    log_file.close()
                except (OSError, UserInputError) as log_error:  # e.g. the disk is full: the error says why
                    log.warning("could not write the end of %s (%s)", run_dir / "metrics.jsonl", log_error)
            raise

    def _setup(self, payload: dict[str, Any] | None, cache_root: Path | None, gather: Gather | None) -> None:
        cfg, data_dir = self.cfg, self.data_dir
        if payload is None:
            torch.manual_seed(cfg.train.seed)
        self.data = open_run_data(data_dir, cfg, cache_root, job=self.job, device=self.device)
        self.announce(self.data.describe())
        self.image_encoder = build_image_encoder(cfg.model)
        self.audio_encoder = build_audio_encoder(cfg.model)
        if cfg.image_weights and payload is None:
            load_torchvision_weights(self.image_encoder, cfg.image_weights)
        if cfg.init and payload is None:  # train --init: the weights, and their file's hash for config.json
            self.cfg = cfg = dataclasses.replace(
                cfg, init=load_init_weights(self.image_encoder, self.audio_encoder, cfg.init))
        self.image_encoder.to(self.device)
        self.audio_encoder.to(self.device)
        self.loader, self.sampler, self.dataset = train_loader(self.data, cfg)
        self.steps_per_epoch = self.sampler.batches_per_epoch()
        self.total_steps = cfg.train.epochs * self.steps_per_epoch
        self.optimizer = build_optimizer(self._parameters(), cfg.train)
        self.scheduler = build_scheduler(self.optimizer, cfg.train, self.total_steps)
        self.loss_fn = PairLoss(cfg.train.loss_config, gather)
        if payload is not None:
            self._restore(payload)
        source = self.data.source
        self._open_run(payload is not None, image_ground_m(source), {"dataset": {
            "path": str(Path(data_dir).resolve()), "layout": source.layout, "kind": source.kind,
            "audio_source": source.audio_source, "split_rule": source.split_rule,
            "pairs": {name: len(idx) for name, idx in self.data.splits.items()}, "skipped": self.data.report.to_dict()}})

    def _parameters(self) -> list[torch.nn.Parameter]:
        return list(self.image_encoder.parameters()) + list(self.audio_encoder.parameters())

    # ------------------------------------------------------------------------------------------------
    def _step(self, batch: dict[str, Any], window: dict[str, float]) -> None:
        cfg, dev, p = self.cfg, self.device, self.progress
        g = step_generator(cfg.train.seed, p.step, dev)
        images = augment_images(batch["image"].to(dev, non_blocking=True), cfg.model.image_size, cfg.augment, g)
        mels = mask_log_mels(batch["audio"].to(dev, non_blocking=True), cfg.augment, g)
        z_img, z_aud = self.image_encoder(images), self.audio_encoder(mels)
        loss = self.loss_fn(z_img, z_aud)
        if not bool(torch.isfinite(loss)):
            raise self._loss_error(loss.item(), f"at epoch {p.epoch + 1}, step {p.step + 1}")
        self._in_step = True
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self._parameters(), cfg.train.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        p.step += 1
        p.epoch_step += 1
        self._in_step = False
        value = loss.item()
        p.loss_sum += value
        p.loss_count += 1
        r1_i2a, r1_a2i = in_batch_recall_at_1(z_img.detach(), z_aud.detach())
        for key, v in (("loss", value), ("r1_i2a", r1_i2a), ("r1_a2i", r1_a2i), ("steps", 1), ("samples", len(z_img))):
            window[key] = window.get(key, 0.0) + v

    def _epoch(self, epoch: int) -> None:
        """Train epoch ``epoch`` (1-based) from ``progress.epoch_step``, then validate and checkpoint."""
        cfg = self.cfg
        self.sampler.set_epoch(epoch, self.progress.epoch_step)
        self.dataset.set_epoch(epoch)
        self.image_encoder.train()
        self.audio_encoder.train()
        if cfg.train.freeze_epochs or cfg.train.trainable != "all":
            set_trainable([self.image_encoder, self.audio_encoder],
                          trainable_at(epoch, cfg.train.freeze_epochs, cfg.train.trainable))
        window: dict[str, float] = {}
        since = time.perf_counter()
        for batch in self.loader:
            self.job.check()
            for key, reason, message in batch["skipped"]:
                log.warning("skipped pair %s (%s): %s", key, reason, message)
                self.progress.skipped[reason] = self.progress.skipped.get(reason, 0) + 1
            if batch["size"] < 2:
                self.progress.epoch_step += 1
                continue
            self._step(batch, window)
            if self.progress.step % cfg.train.log_every == 0:
                steps = window["steps"]
                self._log_step(window["loss"] / steps, window["r1_i2a"] / steps, window["r1_a2i"] / steps,
                               window["samples"] / max(1e-9, time.perf_counter() - since))
                window, since = {}, time.perf_counter()
            mean_loss = self.progress.loss_sum / max(1, self.progress.loss_count)
            self.job.report(self.progress.step, self.total_steps,
                            f"epoch {epoch}/{cfg.train.epochs} loss {mean_loss:.3f}")
        self.job.check()
        val = None
        if epoch % cfg.train.val_every == 0 or epoch == cfg.train.epochs:
            val = self._validated(lambda: validation_metrics(self.image_encoder, self.audio_encoder, self.data,
                                                             "val", cfg, self.device, self.job))
        self._end_epoch(epoch, val)

    def _stop_message(self) -> str:
        if self._in_step:  # a hard interrupt inside an optimiser step: the weights may be half-updated
            return "interrupted inside a step; the previous checkpoint is kept"
        return super()._stop_message()

    def run(self) -> TrainResult:
        splits = self.data.splits
        self._log_start(str(Path(self.data_dir).resolve()), {name: len(idx) for name, idx in splits.items()},
                        skipped=self.data.report.to_dict(), data_summary=self.data.describe())
        if len(splits["val"]) < 2:
            log.warning("the val split has %d usable pairs: no validation, no 'best' checkpoint", len(splits["val"]))
        self._run_epochs(self._epoch)
        return self._result(self.data.describe())


def train(cfg: RunConfig, data_dir: str | Path, run_dir: str | Path, *, resume: bool = False, job: Job | None = None,
          cache_root: Path | None = None, gather: Gather | None = None,
          announce: Callable[[str], None] | None = None) -> TrainResult:
    """Train the two encoders of ``cfg`` on a dataset, writing the run folder ``run_dir``.

    Args:
        cfg: the resolved configuration (a preset plus overrides; on resume, the run's own config
            with the overrides the command allows).
        data_dir: SoundingEarth folder, pair table, or demo world.
        run_dir: the run folder (new, or the run to resume).
        resume: continue ``run_dir/checkpoints/last.pt`` exactly.
        job: progress and cancellation; cancelling stops cleanly after the current step.
        cache_root: where decoded caches live (default: the user cache folder).
        gather: the distributed all-gather for the loss (None: single process).
        announce: called with the data summary line (the CLI prints it).
    Returns:
        A :class:`TrainResult`.
    Raises:
        Cancelled: the job was cancelled (``last`` saved, log ends ``interrupted``).
        TrainingError: the loss became NaN/inf (the last good checkpoint is kept).
        UserInputError: bad data, options or run folder; FolderBusyError (one of them): another process
            trains into ``run_dir``; DiskFullError: a checkpoint or the log could not be written.
    """
    with run_folder_lock(Path(run_dir)), torch_settings(cfg):
        trainer = _Trainer(cfg, Path(data_dir), Path(run_dir), resume, job or Job(), cache_root, gather,
                           announce or (lambda text: None))
        return trainer.run()
