"""The bookkeeping both training loops share: run folder, config.json, checkpoints, the log, the best score.

:class:`RunBook` is the base of the per-sample loop (:mod:`engine.train.loop`) and of the GPU input
pipeline's loop (:mod:`engine.shard_training.train_loop`). It owns what a run writes and how a session starts and
ends: refusing or reopening the run folder, ``RUN/config.json``, the ``last``/``best`` checkpoints, the
``start``/``step``/``epoch``/``end`` events of ``metrics.jsonl`` (contract in :mod:`engine.train.metrics_log`) and
their TensorBoard scalars, the best-epoch rule, the ETA and the messages of a stopped or failed run. A loop
keeps what differs: how batches are made and how a step runs. Under DDP only the main rank writes
(:attr:`RunBook.is_main`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from engine.checkpoint import load_checkpoint, read_run_config, write_run_config
from engine.config.run import RunConfig
from engine.errors import Cancelled, CheckpointError, ConfigError, TrainingError, UserInputError
from engine.files import remove_stale_temp_files
from engine.folder_lock import FolderLock
from engine.progress import Job
from engine.train.metrics_log import MetricsLog
from engine.train.state import Progress, checkpoint_payload, restore_state, save_state


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
def torch_settings(cfg: RunConfig) -> Iterator[None]:
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


@contextlib.contextmanager
def run_folder_lock(run_dir: Path, is_main: bool = True) -> Iterator[None]:
    """Hold RUN/.lock for the session (main rank only) and clear what a killed session left behind.

    A second training on the same folder fails at once, naming the pid that holds it; the lock goes
    with the process however it ends, so a crashed run never blocks the next one. The temporary files
    of a checkpoint or config write cut short by a kill are removed here (no other writer can be live).

    Raises:
        FolderBusyError: another live process trains into ``run_dir``.
    """
    if not is_main:
        yield
        return
    with FolderLock(run_dir, subject=f"--out {run_dir}", busy="is in use by another training run",
                    fix="wait for it to finish or stop it, or choose another --out folder"):
        for folder in (run_dir, run_dir / "checkpoints"):
            remove_stale_temp_files(folder)
        yield


def _score(val: dict[str, Any]) -> list[float]:
    """Lower is better: the mean median rank of both directions relative to the gallery, then the mean rank."""
    dirs = (val["image_to_audio"], val["audio_to_image"])
    return [sum(d["median_rank"] for d in dirs) / (2 * val["gallery"]),
            sum(d["mean_rank"] for d in dirs) / (2 * val["gallery"])]


class RunBook:
    """What one training session (a fresh start or a resume) records, whichever loop trains it.

    A subclass sets the attributes annotated below while it sets up (calling :meth:`_check_run_folder`
    first and :meth:`_open_run` once the model and data are known), then trains with :meth:`_run_epochs`,
    ending each epoch with :meth:`_end_epoch`. Log lines go to the subclass's module logger, so they read
    as before the loops shared this class.
    """

    image_encoder: torch.nn.Module
    audio_encoder: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    device: torch.device
    steps_per_epoch: int
    total_steps: int
    #: What stops a run cleanly (``last`` saved, ``end`` status ``interrupted``).
    stops: ClassVar[tuple[type[BaseException], ...]] = (Cancelled,)

    def __init__(self, cfg: RunConfig, run_dir: Path, job: Job) -> None:
        self.cfg, self.run_dir, self.job = cfg, run_dir, job
        self.ckpt_dir = run_dir / "checkpoints"
        self.progress = Progress()
        self.metrics: dict[str, Any] = {}
        self.log: MetricsLog | None = None
        self.logger = logging.getLogger(type(self).__module__)
        self._val_seconds, self._val_runs = 0.0, 0
        self._session_start, self._session_first_step = time.perf_counter(), 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run folder (only rank 0 under DDP)."""
        return True

    # -- the run folder ------------------------------------------------------------------------------
    def _check_run_folder(self, resume: bool) -> dict[str, Any] | None:
        """The checkpoint to resume from, or None for a new run (whose folder the main rank creates).

        A folder with config.json but no ``last`` checkpoint (a run stopped before its first epoch
        ended: an early kill, a full disk, a refused option) is started again from scratch, by
        ``--resume`` or by a plain train, with a warning that says so.

        Raises:
            CheckpointError: ``resume`` without a ``last`` checkpoint or a config.json.
            ConfigError: a new run into a folder that already holds a checkpoint.
        """
        last = self.ckpt_dir / "last.pt"
        stuck = (self.run_dir / "config.json").is_file() and not last.exists()
        if resume and not stuck:
            if not last.is_file():
                raise CheckpointError(f"--resume {last}", "no checkpoint to resume from",
                                      "start a new run without --resume, or name the run folder with --out")
            read_run_config(self.run_dir)
            return load_checkpoint(last)
        if self.is_main:
            if last.exists():
                raise ConfigError(f"--out {self.run_dir}", "already holds a run",
                                  "pass --resume to continue it, or choose a new --out folder")
            if stuck:
                self.logger.warning("%s holds no checkpoint (the run stopped before its first epoch ended); "
                                    "starting it again from scratch", self.run_dir)
                shutil.rmtree(self.run_dir / "tensorboard", ignore_errors=True)
            self.run_dir.mkdir(parents=True, exist_ok=True)
        return None

    def _restore(self, payload: dict[str, Any]) -> None:
        """Continue from a ``last`` checkpoint: weights, optimiser, schedule, RNG, counters and metrics."""
        self.progress = restore_state(payload, self.image_encoder, self.audio_encoder, self.optimizer,
                                      self.scheduler)
        self.metrics = payload.get("metrics") or {}

    def _open_run(self, resumed: bool, ground_m: float | None, sections: dict[str, Any]) -> None:
        """Write RUN/config.json (the run config plus ``sections``) and open the log (main rank only).

        Args:
            resumed: the session continues a checkpoint (the log is appended to).
            ground_m: the ground width of a whole training image in metres, if the data tells it.
            sections: what the loop adds to the config (``dataset``, and ``compute`` for the cache loop).
        """
        if not self.is_main:
            return
        config = self.cfg.to_dict()
        # What the exporter records as the bundle's ground_size_m: the ground width the encoder's view covers.
        config["data"]["ground_size_m"] = round(ground_m * self.cfg.view_fraction, 3) if ground_m else None
        write_run_config(self.run_dir, {**config, **sections})
        self.log = MetricsLog(self.run_dir, resume_step=self.progress.step if resumed else None)

    def _save(self, name: str) -> Path:
        """Write checkpoint ``name`` (on the main rank); returns its path."""
        path = self.ckpt_dir / f"{name}.pt"
        if not self.is_main:
            return path
        payload = checkpoint_payload(self.image_encoder, self.audio_encoder, self.optimizer, self.scheduler,
                                     self.progress, self.metrics, self.cfg.to_dict())
        try:
            save_state(path, payload)  # a full disk raises DiskFullError (one line; the previous file is intact)
        except OSError as err:
            raise CheckpointError(path, f"could not be written ({err.strerror or err})",
                                  "free some disk space and --resume; the previous checkpoint is intact") from None
        return path

    # -- the log -------------------------------------------------------------------------------------
    def _log_start(self, data: str, pairs: Mapping[str, int], **extra: Any) -> None:
        """The ``start`` event: the plan of the session, the data and ``pairs`` per split, then ``extra``."""
        if self.log is None:
            return
        cfg, p = self.cfg, self.progress
        resumed = p.step > 0 or p.epoch > 0
        self.log.event("start", epochs=cfg.train.epochs, steps_per_epoch=self.steps_per_epoch,
                       total_steps=self.total_steps, preset=cfg.preset, data=data, n_train=pairs.get("train", 0),
                       n_val=pairs.get("val", 0), n_test=pairs.get("test", 0), batch_size=cfg.train.batch_size,
                       device=str(self.device), resumed_from_step=p.step if resumed else None, **extra)

    def _log_step(self, loss: float, r1_i2a: float, r1_a2i: float, samples_per_s: float) -> None:
        """A ``step`` event and its scalars: the means over the steps since the last one, the lr and the ETA."""
        if self.log is None:
            return
        p = self.progress
        per_step = (time.perf_counter() - self._session_start - self._val_seconds) / max(
            1, p.step - self._session_first_step)
        eta = per_step * (self.total_steps - p.step) + self._val_estimate() * (self.cfg.train.epochs - p.epoch)
        fields = {"epoch": p.epoch + 1, "step": p.step, "loss": loss, "r1_image_to_audio": r1_i2a,
                  "r1_audio_to_image": r1_a2i, "lr": self.optimizer.param_groups[0]["lr"],
                  "samples_per_s": samples_per_s, "eta_s": eta}
        self.log.event("step", **fields)
        self.log.scalars(p.step, {f"train/{k}": v for k, v in fields.items() if k not in ("epoch", "step", "eta_s")})

    def _loss_error(self, value: float | None, where: str) -> TrainingError:
        """The error that stops a run whose loss became NaN or infinite ``where`` (e.g. "at step 6")."""
        last = self.ckpt_dir / "last.pt"
        kept = f"the last good checkpoint {last} (epoch {self.progress.epoch}) is kept" if last.exists() \
            else "no checkpoint was written yet"
        return TrainingError(self.run_dir, f"the loss became {value} {where}; training stopped and {kept}",
                             "lower the learning rate (train.lr in the preset) or check the data")

    # -- epochs --------------------------------------------------------------------------------------
    def _validated(self, validate: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        """Run a validation, timed for the ETA (which leaves validations out of the time per step)."""
        started = time.perf_counter()
        val = validate()
        self._val_seconds += time.perf_counter() - started
        self._val_runs += 1
        return val

    def _val_estimate(self) -> float:
        return self._val_seconds / self._val_runs if self._val_runs else 0.0

    def _end_epoch(self, epoch: int, val: dict[str, Any] | None) -> None:
        """Close epoch ``epoch`` (1-based): counters, best score, ``last``/``best``, the event, scalars, a log line."""
        p = self.progress
        train_loss = p.loss_sum / max(1, p.loss_count)
        p.epoch, p.epoch_step, p.loss_sum, p.loss_count = epoch, 0, 0.0, 0
        best = False
        self.metrics = {"train_loss": train_loss, "val": val}
        if val is not None and (not p.best_score or _score(val) < p.best_score):
            p.best_score, p.best_epoch, best = _score(val), epoch, True
        self._save("last")
        if best:
            self._save("best")
        if self.log is None:
            return
        self.log.event("epoch", epoch=epoch, step=p.step, train_loss=train_loss, best=best, val=val)
        scalars = {"epoch/train_loss": train_loss}
        for direction in ("image_to_audio", "audio_to_image"):
            for key, value in (val or {}).get(direction, {}).items():
                scalars[f"val/{direction}/{key}"] = value
        self.log.scalars(p.step, scalars)
        if val is not None:
            i2a, a2i = val["image_to_audio"], val["audio_to_image"]
            self.logger.info("epoch %d: train loss %.4f; val (%d pairs) median rank %.1f / %.1f, R@10 %.3f / %.3f%s",
                             epoch, train_loss, val["gallery"], i2a["median_rank"], a2i["median_rank"], i2a["R@10"],
                             a2i["R@10"], " (best)" if best else "")

    def _run_epochs(self, train_epoch: Callable[[int], None]) -> None:
        """Train the epochs left and end the log with ``finished``, ``interrupted`` or ``failed``.

        Raises:
            Cancelled: one of :attr:`stops` (a KeyboardInterrupt becomes Cancelled) after ``last`` was saved.
            TrainingError: the loss became NaN/inf; any other error ends the log ``failed`` and propagates.
        """
        p = self.progress
        self._session_start, self._session_first_step = time.perf_counter(), p.step
        try:
            for epoch in range(p.epoch + 1, self.cfg.train.epochs + 1):
                train_epoch(epoch)
        except self.stops as err:
            self._finish("interrupted", self._stop_message())
            if isinstance(err, KeyboardInterrupt):
                raise Cancelled() from err
            raise
        except UserInputError as err:  # a NaN loss (TrainingError), a full disk ...: one line for the app
            self._finish("failed", str(err))
            raise
        except Exception as err:
            self._finish("failed", f"{type(err).__name__}: {err}")
            raise
        self._finish("finished", f"trained {p.epoch} epochs ({p.step} steps)")

    def _result(self, data_summary: str) -> TrainResult:
        """What a finished session returns."""
        p = self.progress
        return TrainResult(self.run_dir, "finished", p.epoch, p.step, p.best_epoch, self.metrics, data_summary)

    def _stop_message(self) -> str:
        """Save ``last`` for a clean stop; returns the ``end`` event's message."""
        try:
            path = self._save("last")
        except UserInputError as save_error:  # e.g. a full disk: the previous checkpoint is kept
            return f"stopped at epoch {self.progress.epoch + 1}, step {self.progress.step}, but {save_error}"
        return f"stopped at epoch {self.progress.epoch + 1}, step {self.progress.step}; resume with --resume " \
               f"(saved {path})"

    def _finish(self, status: str, message: str) -> None:
        """The ``end`` event, then close the log."""
        if self.log is None:
            return
        p, last = self.progress, self.ckpt_dir / "last.pt"
        log_file, self.log = self.log, None
        try:
            log_file.event("end", status=status, message=message, checkpoint=str(last) if last.exists() else None,
                           epoch=p.epoch, step=p.step, best_epoch=p.best_epoch, skipped_while_training=p.skipped)
        except (OSError, UserInputError) as err:  # a full disk must not hide why the run ended
            self.logger.warning("could not end the log %s (%s)", log_file.path, err)
        finally:
            with contextlib.suppress(OSError):
                log_file.close()
        (self.logger.info if status == "finished" else self.logger.warning)("%s: %s", status, message)
