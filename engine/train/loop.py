"""The training loop: epochs of augmented batches, validation, checkpoints, logs, clean stops.

``train(cfg, data_dir, run_dir)`` runs a whole training; see ``soundscape-engine train --help``.
It stops cleanly when its :class:`~engine.progress.Job` is cancelled (the CLI cancels it on
Ctrl-C/SIGINT; the app sends SIGINT): the current state is saved as ``last`` and the log ends with
status ``interrupted``; ``--resume`` continues exactly there. A NaN or infinite loss stops the run
before the bad step touches the weights, keeps the last good checkpoint and ends with ``failed``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.augment import augment_images, mask_log_mels, step_generator
from engine.checkpoint import load_checkpoint, read_run_config, write_run_config
from engine.data.source import image_ground_m
from engine.device import resolve_device
from engine.embedding import embed_loader
from engine.errors import Cancelled, CheckpointError, ConfigError, TrainingError
from engine.evaluate import retrieval_metrics, validation_summary
from engine.losses import Gather, PairLoss, in_batch_recall_at_1
from engine.models import build_audio_encoder, build_image_encoder, load_torchvision_weights
from engine.progress import Job
from engine.train.config import RunConfig
from engine.train.data import RunData, clip_loader, open_run_data, train_loader
from engine.train.metrics_log import MetricsLog
from engine.train.state import (
    Progress,
    build_optimizer,
    build_scheduler,
    checkpoint_payload,
    restore_state,
    save_state,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    status: str                      # finished | interrupted | failed
    epoch: int
    step: int
    best_epoch: int
    metrics: dict[str, Any] = field(default_factory=dict)
    data_summary: str = ""


@contextlib.contextmanager
def _torch_settings(cfg: RunConfig) -> Iterator[None]:
    """Threads and determinism for the run, restored afterwards (tests train several runs in a process)."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        if cfg.train.threads > 0:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


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


def _score(val: dict[str, Any]) -> list[float]:
    """Lower is better: the mean median rank of both directions relative to the gallery, then the mean rank."""
    dirs = (val["image_to_audio"], val["audio_to_image"])
    return [sum(d["median_rank"] for d in dirs) / (2 * val["gallery"]),
            sum(d["mean_rank"] for d in dirs) / (2 * val["gallery"])]


class _Trainer:
    """The state of one training session (a fresh start or a resume)."""

    def __init__(self, cfg: RunConfig, data_dir: Path, run_dir: Path, resume: bool, job: Job,
                 cache_root: Path | None, gather: Gather | None, announce: Callable[[str], None]) -> None:
        self.cfg, self.data_dir, self.run_dir, self.job, self.announce = cfg, data_dir, run_dir, job, announce
        self.ckpt_dir = run_dir / "checkpoints"
        self.device = resolve_device(cfg.train.device)
        payload = self._check_run_folder(resume)
        try:
            self._setup(payload, cache_root, gather)
        except (Exception, KeyboardInterrupt) as err:  # Cancelled is an Exception too
            # The app tails metrics.jsonl: a run that fails before its first step still ends its log.
            interrupted = isinstance(err, (Cancelled, KeyboardInterrupt))
            log_file = MetricsLog(run_dir, resume_step=0 if payload is not None else None, tensorboard=False)
            log_file.event("end", status="interrupted" if interrupted else "failed",
                           message="stopped while preparing the data" if interrupted else str(err), checkpoint=None)
            log_file.close()
            raise

    def _setup(self, payload: dict[str, Any] | None, cache_root: Path | None, gather: Gather | None) -> None:
        cfg, run_dir, data_dir, job, announce = self.cfg, self.run_dir, self.data_dir, self.job, self.announce
        if payload is None:
            torch.manual_seed(cfg.train.seed)
        self.data = open_run_data(data_dir, cfg, cache_root, job=job)
        announce(self.data.describe())
        self.image = build_image_encoder(cfg.model)
        self.audio = build_audio_encoder(cfg.model)
        if cfg.image_weights and payload is None:
            load_torchvision_weights(self.image, cfg.image_weights)
        self.image.to(self.device)
        self.audio.to(self.device)
        self.loader, self.sampler, self.dataset = train_loader(self.data, cfg)
        self.steps_per_epoch = self.sampler.batches_per_epoch()
        self.total_steps = cfg.train.epochs * self.steps_per_epoch
        self.optimizer = build_optimizer(list(self.image.parameters()) + list(self.audio.parameters()), cfg.train)
        self.scheduler = build_scheduler(self.optimizer, cfg.train, self.total_steps)
        self.loss_fn = PairLoss(cfg.train.loss_config, gather)
        self.progress = Progress()
        self.metrics: dict[str, Any] = {}
        if payload is not None:
            self.progress = restore_state(payload, self.image, self.audio, self.optimizer, self.scheduler)
            self.metrics = payload.get("metrics") or {}
        config = cfg.to_dict()
        ground = image_ground_m(self.data.source)
        # What the exporter records as the bundle's ground_size_m: the ground width the encoder's view covers.
        config["data"]["ground_size_m"] = round(ground * cfg.view_fraction, 3) if ground else None
        write_run_config(run_dir, {**config, "dataset": {
            "path": str(Path(data_dir).resolve()), "layout": self.data.source.layout, "kind": self.data.source.kind,
            "audio_source": self.data.source.audio_source, "split_rule": self.data.source.split_rule,
            "pairs": {name: len(idx) for name, idx in self.data.splits.items()}, "skipped": self.data.report.to_dict()}})
        self.log = MetricsLog(run_dir, resume_step=self.progress.step if payload is not None else None)
        self._in_step = False
        self._val_seconds = 0.0
        self._val_runs = 0

    def _check_run_folder(self, resume: bool) -> dict[str, Any] | None:
        last = self.ckpt_dir / "last.pt"
        if resume:
            if not last.is_file():
                raise CheckpointError(f"--resume {last}", "no checkpoint to resume from",
                                      "start a new run without --resume, or name the run folder with --out")
            read_run_config(self.run_dir)
            return load_checkpoint(last)
        if (self.run_dir / "config.json").exists() or last.exists():
            raise ConfigError(f"--out {self.run_dir}", "already holds a run",
                              "pass --resume to continue it, or choose a new --out folder")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return None

    # ------------------------------------------------------------------------------------------------
    def _save(self, name: str) -> Path:
        path = self.ckpt_dir / f"{name}.pt"
        payload = checkpoint_payload(self.image, self.audio, self.optimizer, self.scheduler, self.progress,
                                     self.metrics, self.cfg.to_dict())
        try:
            save_state(path, payload)
        except OSError as err:  # e.g. a full disk: the atomic write left the previous file intact
            raise CheckpointError(path, f"could not be written ({err.strerror or err})",
                                  "free some disk space and --resume; the previous checkpoint is intact") from None
        return path

    def _step(self, batch: dict[str, Any], window: dict[str, float]) -> None:
        cfg, dev = self.cfg, self.device
        g = step_generator(cfg.train.seed, self.progress.step, dev)
        images = augment_images(batch["image"].to(dev, non_blocking=True), cfg.model.image_size, cfg.augment, g)
        mels = mask_log_mels(batch["audio"].to(dev, non_blocking=True), cfg.augment, g)
        z_img, z_aud = self.image(images), self.audio(mels)
        loss = self.loss_fn(z_img, z_aud)
        if not bool(torch.isfinite(loss)):
            last = self.ckpt_dir / "last.pt"
            kept = f"the last good checkpoint {last} (epoch {self.progress.epoch}) is kept" if last.exists() \
                else "no checkpoint was written yet"
            raise TrainingError(self.run_dir, f"the loss became {loss.item()} at epoch {self.progress.epoch + 1}, "
                                f"step {self.progress.step + 1}; training stopped and {kept}",
                                "lower the learning rate (train.lr in the preset) or check the data")
        self._in_step = True
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(list(self.image.parameters()) + list(self.audio.parameters()),
                                           cfg.train.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.progress.step += 1
        self.progress.epoch_step += 1
        self._in_step = False
        value = loss.item()
        self.progress.loss_sum += value
        self.progress.loss_count += 1
        r1_i2a, r1_a2i = in_batch_recall_at_1(z_img.detach(), z_aud.detach())
        for key, v in (("loss", value), ("r1_i2a", r1_i2a), ("r1_a2i", r1_a2i), ("steps", 1), ("samples", len(z_img))):
            window[key] = window.get(key, 0.0) + v

    def _log_window(self, window: dict[str, float], since: float, session: dict[str, float]) -> None:
        steps = window["steps"]
        now = time.perf_counter()
        per_step = (now - session["start"] - self._val_seconds) / max(1.0, session["steps"])
        remaining_epochs = self.cfg.train.epochs - self.progress.epoch
        eta = per_step * (self.total_steps - self.progress.step) + self._val_estimate() * remaining_epochs
        fields = {"epoch": self.progress.epoch + 1, "step": self.progress.step, "loss": window["loss"] / steps,
                  "r1_image_to_audio": window["r1_i2a"] / steps, "r1_audio_to_image": window["r1_a2i"] / steps,
                  "lr": self.optimizer.param_groups[0]["lr"], "samples_per_s": window["samples"] / max(1e-9, now - since),
                  "eta_s": eta}
        self.log.event("step", **fields)
        self.log.scalars(self.progress.step, {"train/loss": fields["loss"], "train/lr": fields["lr"],
                                              "train/r1_image_to_audio": fields["r1_image_to_audio"],
                                              "train/r1_audio_to_image": fields["r1_audio_to_image"],
                                              "train/samples_per_s": fields["samples_per_s"]})

    def _val_estimate(self) -> float:
        return self._val_seconds / self._val_runs if self._val_runs else 0.0

    def _epoch(self, epoch: int, session: dict[str, float]) -> None:
        """Train epoch ``epoch`` (1-based) from ``progress.epoch_step``, then validate and checkpoint."""
        cfg = self.cfg
        self.sampler.set_epoch(epoch, self.progress.epoch_step)
        self.dataset.set_epoch(epoch)
        self.image.train()
        self.audio.train()
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
            session["steps"] += 1
            if self.progress.step % cfg.train.log_every == 0:
                self._log_window(window, since, session)
                window, since = {}, time.perf_counter()
            mean_loss = self.progress.loss_sum / max(1, self.progress.loss_count)
            self.job.report(self.progress.step, self.total_steps,
                            f"epoch {epoch}/{cfg.train.epochs} loss {mean_loss:.3f}")
        self.job.check()
        val = None
        if epoch % cfg.train.val_every == 0 or epoch == cfg.train.epochs:
            started = time.perf_counter()
            val = validation_metrics(self.image, self.audio, self.data, "val", cfg, self.device, self.job)
            self._val_seconds += time.perf_counter() - started
            self._val_runs += 1
        train_loss = self.progress.loss_sum / max(1, self.progress.loss_count)
        self.progress.epoch, self.progress.epoch_step = epoch, 0
        self.progress.loss_sum, self.progress.loss_count = 0.0, 0
        best = False
        self.metrics = {"train_loss": train_loss, "val": val}
        if val is not None and (not self.progress.best_score or _score(val) < self.progress.best_score):
            self.progress.best_score, self.progress.best_epoch, best = _score(val), epoch, True
        self._save("last")
        if best:
            self._save("best")
        self.log.event("epoch", epoch=epoch, step=self.progress.step, train_loss=train_loss, best=best, val=val)
        scalars = {"epoch/train_loss": train_loss}
        for direction in ("image_to_audio", "audio_to_image"):
            for key, value in (val or {}).get(direction, {}).items():
                scalars[f"val/{direction}/{key}"] = value
        self.log.scalars(self.progress.step, scalars)
        if val is not None:
            i2a, a2i = val["image_to_audio"], val["audio_to_image"]
            log.info("epoch %d: train loss %.4f; val (%d pairs) median rank %.1f / %.1f, R@10 %.3f / %.3f%s",
                     epoch, train_loss, val["gallery"], i2a["median_rank"], a2i["median_rank"], i2a["R@10"],
                     a2i["R@10"], " (best)" if best else "")

    def run(self) -> TrainResult:
        cfg, p = self.cfg, self.progress
        resumed = p.step > 0 or p.epoch > 0
        self.log.event("start", epochs=cfg.train.epochs, steps_per_epoch=self.steps_per_epoch,
                       total_steps=self.total_steps, preset=cfg.preset, data=str(Path(self.data_dir).resolve()),
                       n_train=len(self.data.splits["train"]), n_val=len(self.data.splits["val"]),
                       n_test=len(self.data.splits["test"]), batch_size=cfg.train.batch_size,
                       device=str(self.device), resumed_from_step=p.step if resumed else None,
                       skipped=self.data.report.to_dict(), data_summary=self.data.describe())
        if len(self.data.splits["val"]) < 2:
            log.warning("the val split has %d usable pairs: no validation, no 'best' checkpoint",
                        len(self.data.splits["val"]))
        session = {"start": time.perf_counter(), "steps": 0.0}
        status, message = "finished", ""
        try:
            for epoch in range(p.epoch + 1, cfg.train.epochs + 1):
                self._epoch(epoch, session)
        except (Cancelled, KeyboardInterrupt) as err:
            status = "interrupted"
            if self._in_step:  # a hard interrupt inside an optimiser step: the weights may be half-updated
                message = "interrupted inside a step; the previous checkpoint is kept"
            else:
                try:
                    path = self._save("last")
                    message = f"stopped at epoch {p.epoch + 1}, step {p.step}; resume with --resume (saved {path})"
                except CheckpointError as save_error:
                    message = f"stopped at epoch {p.epoch + 1}, step {p.step}, but {save_error}"
            self._finish(status, message)
            if isinstance(err, KeyboardInterrupt):
                raise Cancelled() from err
            raise
        except TrainingError as err:
            self._finish("failed", str(err))
            raise
        except Exception as err:
            self._finish("failed", f"{type(err).__name__}: {err}")
            raise
        self._finish(status, message or f"trained {p.epoch} epochs ({p.step} steps)")
        return TrainResult(self.run_dir, status, p.epoch, p.step, p.best_epoch, self.metrics, self.data.describe())

    def _finish(self, status: str, message: str) -> None:
        last = self.ckpt_dir / "last.pt"
        self.log.event("end", status=status, message=message, checkpoint=str(last) if last.exists() else None,
                       epoch=self.progress.epoch, step=self.progress.step, best_epoch=self.progress.best_epoch,
                       skipped_while_training=self.progress.skipped)
        self.log.close()
        (log.info if status == "finished" else log.warning)("%s: %s", status, message)


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
        UserInputError: bad data, options or run folder.
    """
    with _torch_settings(cfg):
        trainer = _Trainer(cfg, Path(data_dir), Path(run_dir), resume, job or Job(), cache_root, gather,
                           announce or (lambda text: None))
        return trainer.run()
