"""The training job: ``soundscape-engine train`` in a subprocess, its metrics.jsonl tailed for the
live curves, a clean stop on cancel (SIGTERM: the engine saves its checkpoint and exits), then
``soundscape-engine export`` into a new model bundle.

The app never imports torch; the engine runs in its own process with the same Python.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config.run import preset_names
from engine.errors import Cancelled, TrainingError
from engine.progress import Job

log = logging.getLogger(__name__)

POLL_S = 0.2
STOP_GRACE_S = 120.0  # after SIGTERM the engine finishes its step and writes a checkpoint


@dataclass(frozen=True)
class TrainingSpec:
    """What the Train panel asks for.

    Attributes:
        data: the data folder (pair table, SoundingEarth or demo world) or a pair-table CSV.
        preset: an engine preset name.
        epochs: number of epochs.
        run_dir: where the run goes (config, checkpoints, metrics.jsonl, logs).
        bundle_dir: where the exported bundle goes.
        python: the interpreter that runs the engine.
        extra_args: more ``train`` options.
    """

    data: Path
    preset: str
    epochs: int
    run_dir: Path
    bundle_dir: Path
    python: str = sys.executable
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "app-train.log"


# What `soundscape-engine train` and `export` import beyond the app's own dependencies (the `engine` extra).
ENGINE_MODULES = ("torch", "torchvision", "onnx")


def engine_unavailable_reason(find_spec: Callable[[str], Any] | None = None,
                              frozen: bool | None = None) -> str | None:
    """Why this installation cannot train, or None when it can.

    Training runs the engine with this Python; the app-only install (``pip install soundscape-mapper[app]``)
    and the desktop bundle have no PyTorch. Nothing is imported here (the app never imports torch).

    Args:
        find_spec: the module finder (default ``importlib.util.find_spec``; tests pass a fake).
        frozen: whether this is the desktop bundle (default: ``sys.frozen``).
    Returns:
        A one-line reason naming what is missing and the fix, or None.
    """
    if getattr(sys, "frozen", False) if frozen is None else frozen:
        return ("Training: the desktop bundle does not include the engine (PyTorch); train with "
                "'soundscape-engine train' in a full install (pip install 'soundscape-mapper[engine]') and "
                "open the exported bundle with File > Open model bundle…")
    missing = [m for m in ENGINE_MODULES if not _findable(find_spec or importlib.util.find_spec, m)]
    if missing:
        return (f"Training: this installation lacks the engine's {', '.join(missing)}; install the engine with "
                "the Train tab's 'Install the engine…' (or `make engine`); no restart is needed")
    return None


def _findable(find_spec: Callable[[str], Any], name: str) -> bool:
    try:
        return find_spec(name) is not None
    except (ImportError, ValueError):  # a finder that refuses the name, a broken package
        return False


def train_command(spec: TrainingSpec) -> list[str]:
    """The engine command line that trains ``spec``."""
    return [spec.python, "-m", "engine.cli", "train", "--data", str(spec.data), "--preset", spec.preset,
            "--epochs", str(spec.epochs), "--out", str(spec.run_dir), *spec.extra_args]


def export_command(spec: TrainingSpec) -> list[str]:
    """The engine command line that exports the run's best checkpoint as a bundle."""
    return [spec.python, "-m", "engine.cli", "export", "--run", str(spec.run_dir), "--out", str(spec.bundle_dir)]


class MetricsTail:
    """Reads the complete new lines of a growing metrics.jsonl (a partial last line waits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.bad_lines = 0

    def read_new(self) -> list[dict[str, Any]]:
        """The records appended since the last call (malformed lines are counted and skipped)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" when the data ended with a newline
        records = []
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                self.bad_lines += 1
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


def _popen(cmd: list[str], log_file: Any) -> subprocess.Popen:
    kwargs: dict[str, Any] = {"stdout": log_file, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL}
    if os.name == "nt":  # SIGINT cannot be sent on Windows; CTRL_BREAK reaches a new process group
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(cmd, env=env, **kwargs)


def _interrupt(proc: subprocess.Popen) -> None:
    if os.name == "nt":
        proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
    else:  # the engine stops on SIGTERM as on Ctrl-C (engine.stop_signals): 'last' saved, 'end' logged
        proc.send_signal(signal.SIGTERM)


def _last_error_line(log_path: Path) -> str:
    try:
        lines = [ln.strip() for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    for line in reversed(lines):
        if line.startswith("error:") or "Error" in line:
            return line.removeprefix("error:").strip()
    return next((ln for ln in reversed(lines) if ln), "")


def run_process(cmd: list[str], log_path: Path, job: Job, on_poll: Callable[[], None] | None = None,
                what: str = "training") -> int:
    """Run ``cmd`` until it exits, calling ``on_poll`` every 0.2 s; a cancel sends SIGTERM and waits.

    Returns:
        The exit status (0).
    Raises:
        Cancelled: the job was cancelled (after the process stopped cleanly).
        TrainingError: the process failed.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        log.info("running %s", " ".join(cmd))
        proc = _popen(cmd, log_file)
        interrupted_at: float | None = None
        try:
            while proc.poll() is None:
                if on_poll is not None:
                    on_poll()
                if job.cancelled and interrupted_at is None:
                    log.info("cancel: interrupting %s (pid %d)", what, proc.pid)
                    _interrupt(proc)
                    interrupted_at = time.monotonic()
                if interrupted_at is not None and time.monotonic() - interrupted_at > STOP_GRACE_S:
                    log.warning("%s did not stop within %.0f s of SIGTERM; killing it", what, STOP_GRACE_S)
                    proc.kill()
                time.sleep(POLL_S)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
    if on_poll is not None:
        on_poll()
    if interrupted_at is not None:
        raise Cancelled()
    if proc.returncode != 0:
        detail = _last_error_line(log_path)
        raise TrainingError(log_path, f"{what} failed (exit status {proc.returncode}): {detail}",
                            "read the log, fix the cause and start again")
    return proc.returncode


def run_training(spec: TrainingSpec, job: Job, on_event: Callable[[dict[str, Any]], None]) -> Path:
    """Train, then export. ``on_event`` gets each metrics.jsonl record and app phase records
    (``{"event": "app_phase", "phase": "exporting"}``).

    Returns:
        The exported bundle folder.
    Raises:
        Cancelled: stopped by the user (the run's checkpoint is kept; no export).
        TrainingError: the engine failed (its log names why).
    """
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    tail = MetricsTail(spec.metrics_path)
    ended: list[dict[str, Any]] = []
    total_steps: list[int] = []

    def poll() -> None:
        for record in tail.read_new():
            kind = record.get("event")
            if kind == "end":
                ended.append(record)
            elif kind == "start" and isinstance(record.get("total_steps"), int):
                total_steps.append(record["total_steps"])
            elif kind == "step" and isinstance(record.get("step"), int) and total_steps:
                job.report(record["step"], total_steps[-1], f"epoch {record.get('epoch', '?')}")
            on_event(record)

    run_process(train_command(spec), spec.log_path, job, poll, "training")
    if ended and ended[-1].get("status") not in (None, "finished"):
        raise TrainingError(spec.metrics_path, f"training ended as {ended[-1].get('status')}: "
                            f"{ended[-1].get('message', '')}", "read the run's log and start again")
    on_event({"event": "app_phase", "phase": "exporting"})
    run_process(export_command(spec), spec.run_dir / "app-export.log", job, None, "export")
    return spec.bundle_dir


def available_presets() -> list[str]:
    """The engine's preset names (:func:`engine.config.run.preset_names`), the demo's first."""
    try:
        names = preset_names()
    except (FileNotFoundError, NotADirectoryError):  # an install without the preset files
        names = []
    preferred = [n for n in ("demo-cpu", "tiny") if n in names]
    return preferred + [n for n in names if n not in preferred] or ["demo-cpu"]
