"""The controller the window talks to; it owns the project, audio and training actions."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from app.controllers.audio_actions import AudioActions
from app.controllers.engine_actions import EngineActions
from app.controllers.export_actions import ExportActions
from app.controllers.layer_actions import LayerActions
from app.controllers.model_actions import ModelActions
from app.controllers.new_project_actions import NewProjectActions
from app.controllers.project_actions import ProjectActions
from app.controllers.training_actions import TrainingActions
from app.services.audio_io import AudioBackend
from app.services.settings import Settings, save_settings
from app.state import AppState
from app.workers import TaskRunner

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    """Where the app keeps things and how big the demo is; tests point these at temporary folders.

    Attributes:
        config_dir: settings folder (None: the platform's user config folder).
        data_dir: demo world, demo atlas, runs and trained bundles.
        demo_size: the demo world size generated on first launch ("default"; tests use "tiny").
        demo_workers: processes for the demo world generator (None: all cores).
        extra_bundles: bundles to consider for an atlas besides the shipped and trained ones.
        demo_bundle: the bundle the demo atlas is built with (None: the shipped one in resources/).
        save_settings: False for headless rendering, which must not change what the app reopens.
    """

    config_dir: Path | None
    data_dir: Path
    demo_size: str = "default"
    demo_workers: int | None = None
    extra_bundles: list[Path] = field(default_factory=list)
    demo_bundle: Path | None = None
    save_settings: bool = True


class AppController:
    """Everything a widget may ask for, grouped: ``project``, ``audio``, ``training``, ``engine``, ``models``."""

    def __init__(self, state: AppState, runner: TaskRunner, backend: AudioBackend, settings: Settings,
                 context: AppContext) -> None:
        self.state, self.runner, self.settings, self.context = state, runner, settings, context
        # Each child gets what it needs from its siblings here, rather than reaching through the parent.
        self.project = ProjectActions(self)
        self.audio = AudioActions(self, backend, on_recorded=self.project.query_samples)
        self.engine = EngineActions(self)
        self.engine.refresh()
        self.training = TrainingActions(self, self.engine, self.project.open_bundle)
        self.layers = LayerActions(self)
        self.exports = ExportActions(self)
        self.new_project = NewProjectActions(self)  # File > New project from recordings…
        self.models = ModelActions(self, self.project)

    def save_settings(self) -> None:
        """Persist the settings; a failure is logged and shown, never fatal."""
        if not self.context.save_settings:
            return
        try:
            save_settings(self.settings, self.context.config_dir)
        except OSError as err:
            log.warning("could not save settings: %s", err)
            self.state.tell("warning", f"settings could not be saved ({err})")

    def error(self, message: str) -> None:
        """Show a one-line error in the window."""
        log.info("error shown to the user: %s", message)
        self.state.tell("error", message)

    def shutdown(self) -> None:
        """Stop recording and playback, cancel background work (it keeps what it built), save settings."""
        self.audio.shutdown()
        self.training.shutdown()
        self.new_project.shutdown()
        self.engine.shutdown()
        self.runner.shutdown()
        self.save_settings()
