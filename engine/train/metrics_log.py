"""The training log: RUN/metrics.jsonl (the app tails and plots it) and TensorBoard events.

metrics.jsonl holds one JSON object per line, flushed as written (the app tails complete lines):
a ``start`` event, ``step`` events every ``log_every`` steps, an ``epoch`` event with validation
metrics after each epoch, and an ``end`` event whose ``status`` is ``finished``, ``interrupted`` or
``failed``. A resumed run appends a new ``start`` to the same file, after
:func:`repair_for_resume` dropped what a crash left past the checkpoint (so the curves never step back). For example::

    {"event": "start", "time": 1.7e9, "epochs": 20, "steps_per_epoch": 11, "total_steps": 220,
     "preset": "demo-cpu", "data": "/path", "n_train": 1400, "n_val": 300, "n_test": 300,
     "batch_size": 128, "device": "cpu", "resumed_from_step": null, "skipped": {}, "data_summary": "..."}
    {"event": "step", "time": ..., "epoch": 1, "step": 10, "loss": 0.93, "r1_image_to_audio": 0.05,
     "r1_audio_to_image": 0.04, "lr": 0.001, "samples_per_s": 61.2, "eta_s": 540.0}
    {"event": "epoch", "time": ..., "epoch": 1, "step": 11, "train_loss": 0.95, "best": true,
     "val": {"gallery": 300, "protocol": "paper", "image_to_audio": {"R@1", "R@5", "R@10", "R@10%",
             "median_rank", "mean_rank", "D@10_km"}, "audio_to_image": {...}}}
    {"event": "end", "time": ..., "status": "finished", "message": "...", "epoch": 20, "step": 220,
     "best_epoch": 17, "checkpoint": "RUN/checkpoints/last.pt"}

``epoch`` is 1-based, ``step`` the global optimiser step; ``val`` is null when the val split has fewer
than 2 pairs (its keys: :func:`engine.evaluate.validation_summary`). Training from shards adds
``world_size`` to ``start``. Readers ignore unknown keys and events.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from engine.files import atomic_write_bytes, disk_full_error, is_disk_full, json_safe

log = logging.getLogger(__name__)


class MetricsLog:
    """Writes metrics.jsonl and, when TensorBoard is installed, event files in RUN/tensorboard."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.path = run_dir / "metrics.jsonl"
        if resume_step is not None:
            repair_for_resume(self.path, resume_step)
        self._file = open(self.path, "a" if resume_step is not None else "w", encoding="utf-8")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # purge_step drops events a crashed run wrote after its last checkpoint.
                self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)
            except ImportError:  # pragma: no cover - tensorboard is in the engine extra
                log.warning("tensorboard is not installed; only metrics.jsonl is written")

    def event(self, name: str, **fields: Any) -> dict[str, Any]:
        """Append one event (with ``event`` and ``time``) and flush it."""
        record = {"event": name, "time": time.time(), **json_safe(fields)}
        line = json.dumps(record) + "\n"
        try:
            self._file.write(line)
            self._file.flush()
        except OSError as err:
            if is_disk_full(err):
                raise disk_full_error(self.path, len(line)) from err
            raise
        return record

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """TensorBoard scalars (names like ``train/loss``); non-finite values are skipped."""
        if self._tb is None:
            return
        for name, value in values.items():
            if value is not None and math.isfinite(value):
                self._tb.add_scalar(name, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None
        if not self._file.closed:
            self._file.close()


def repair_for_resume(path: Path, checkpoint_step: int) -> bool:
    """Make metrics.jsonl continue from a checkpoint: drop a torn last line and the ``step``/``epoch``
    events after ``checkpoint_step`` (a crash logged them; the resumed run logs those steps again).

    The file is rewritten atomically, only when something changes. Returns whether it changed.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    kept: list[bytes] = []
    changed = False
    for line in data.splitlines(keepends=True):
        try:
            record = json.loads(line) if line.endswith(b"\n") else None
        except ValueError:
            record = None
        if not isinstance(record, dict):
            changed = changed or bool(line.strip())  # a torn or garbled line (blank ones just go)
            continue
        step = record.get("step")
        if record.get("event") in ("step", "epoch") and isinstance(step, int) and step > checkpoint_step:
            changed = True
            continue
        kept.append(line)
    if changed:
        body = b"".join(kept)
        atomic_write_bytes(path, lambda f: f.write(body))
        log.info("%s: dropped the events a crash left after step %d", path, checkpoint_step)
    return changed


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read metrics.jsonl back (a torn last line, from a crash mid-write, is ignored)."""
    events = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events
