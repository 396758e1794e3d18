"""Training from the panel: the engine as a subprocess, live curves, export, then the new model offered
(with its metrics beside the current one's); the atlas is re-embedded only when the user accepts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.services.model_catalog import read_model_info
from app.services.training import TrainingSpec, run_training
from app.workers import Task

if TYPE_CHECKING:
    from app.controllers.app_controller import AppController
    from app.controllers.engine_actions import EngineActions

log = logging.getLogger(__name__)


class TrainingActions:
    """Start and cancel the training job; at its end export, load the bundle and re-embed the atlas."""

    def __init__(self, app: AppController, engine: EngineActions,
                 switch_model: Callable[[Path, Callable[[bool, str], None]], Any]) -> None:
        self.app = app
        self.engine = engine  # is the engine installed (looked up afresh at each start)
        self.switch_model = switch_model  # load a bundle and re-embed the atlas with it, then call back
        self.task: Task | None = None
        self.extra_args: tuple[str, ...] = ()  # more `train` options (tests make runs small)

    def start(self, data: str | Path, preset: str, epochs: int) -> Task | None:
        """Start training on ``data`` with ``preset`` for ``epochs`` epochs."""
        state = self.app.state.training
        if state.running:
            self.app.error("A training job is already running; cancel it first")
            return None
        if not self.engine.refresh():
            self.app.error(self.app.state.engine.reason)
            return None
        data = Path(data)
        if not data.exists():
            self.app.error(f"{data}: data folder not found; choose a pair table, SoundingEarth or demo world folder")
            return None
        problem = data_layout_problem(data)
        if problem:  # refused before any process starts, and before the run folder exists
            self.app.error(problem)
            return None
        settings = self.app.settings
        settings.train_data, settings.train_preset, settings.train_epochs = str(data), preset, int(epochs)
        self.app.save_settings()
        name = time.strftime("%Y%m%d-%H%M%S") + f"-{preset}"
        root = self.app.context.data_dir
        spec = TrainingSpec(data=data, preset=preset, epochs=int(epochs), run_dir=root / "runs" / name,
                            bundle_dir=root / "bundles" / name, extra_args=self.extra_args)
        state.reset(spec.run_dir)
        self.task = self.app.runner.submit(
            "Training", lambda job: run_training(spec, job, job.publish), on_publish=self._event,
            on_success=self._trained, on_error=self._failed, on_cancelled=self._cancelled)
        return self.task

    def _event(self, record: dict[str, Any]) -> None:
        state = self.app.state.training
        if record.get("event") == "app_phase":
            state.set_phase(str(record["phase"]))
        else:
            state.apply_event(record)

    def _trained(self, bundle_path: Path) -> None:
        """Offer the new model beside the current one; nothing switches until :meth:`accept_offer`."""
        state = self.app.state.training
        state.bundle_path = bundle_path
        new = read_model_info(bundle_path, "trained")
        current_path = self.app.state.project.bundle_path
        current = read_model_info(current_path, "current") if current_path is not None else None
        metrics = new.metrics_text() if new is not None else "no metrics"
        state.set_offer((new, current), "finished",
                        f"Trained {bundle_path.name} ({metrics}); the current model stays until you choose Use it")

    def decline_offer(self) -> None:
        """Keep the current model (the trained one stays in the model list)."""
        state = self.app.state.training
        if state.offer is not None:
            state.set_offer(None, "finished", f"Kept the current model; {state.bundle_path.name} is in "
                                              "Model > Models…")

    def accept_offer(self) -> None:
        """Switch to the offered model: the atlas is re-embedded into a new generation with it."""
        state = self.app.state.training
        if state.offer is None or state.bundle_path is None:
            return
        bundle_path = state.bundle_path
        state.set_offer(None, "reembedding" if self.app.state.project.atlas_path else "exporting",
                        "Switching to the new model")

        def switched(ok: bool, message: str) -> None:
            if ok:
                state.set_phase("finished", f"Now using the new model {bundle_path.name}")
            else:
                state.set_phase("failed", f"The model was trained and exported to {bundle_path}, but "
                                          f"switching to it failed: {message}")

        self.switch_model(bundle_path, switched)

    def _failed(self, message: str) -> None:
        self.app.state.training.set_phase("failed", message)
        self.app.error(message)

    def _cancelled(self) -> None:
        run = self.app.state.training.run_dir
        self.app.state.training.set_phase("cancelled", f"Stopped; the checkpoint is kept in {run}")

    def cancel(self) -> None:
        """Stop training cleanly (the engine saves its checkpoint)."""
        if self.task is not None and self.task.running:
            self.task.cancel()

    def shutdown(self) -> None:
        self.cancel()


def data_layout_problem(data: Path) -> str:
    """Why ``data`` is not a training folder the engine reads ('' when its layout is fine).

    The engine's own layout check (torch-free, no scan of the files), run in the app before spawning.
    """
    from engine.data.source import detect_layout
    from engine.errors import UserInputError

    try:
        detect_layout(Path(data))
    except UserInputError as err:
        return str(err)
    return ""
