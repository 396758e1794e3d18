"""Models as the user's objects: the model list, using one, and one click back to the shipped demo model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.services import demo
from app.services.atlas_library import is_demo_atlas
from app.services.model_catalog import ModelInfo, list_models
from app.services.project import shipped_bundle_path

if TYPE_CHECKING:
    from app.controllers.app_controller import AppController
    from app.controllers.project_actions import ProjectActions

log = logging.getLogger(__name__)


class ModelActions:
    """List the known models and switch between them (the atlas is re-embedded into a new generation,
    on a copy when it is the demo atlas)."""

    def __init__(self, app: AppController, project: ProjectActions) -> None:
        self.app, self.project = app, project

    @property
    def shipped(self) -> Path:
        return (self.app.context.demo_bundle or shipped_bundle_path()).resolve()

    def models(self) -> list[ModelInfo]:
        """Shipped, trained (newest first) and opened models, read from their manifests."""
        return list_models(self.shipped, self.app.context.data_dir, self.app.settings.opened_bundles)

    def current_path(self) -> Path | None:
        path = self.app.state.project.bundle_path
        return Path(path).resolve() if path is not None else None

    def use(self, path: str | Path) -> Any:
        """Switch to the model at ``path`` (remembered in the model list when it came from elsewhere)."""
        path = Path(path).resolve()
        if path == self.current_path():
            self.app.state.tell("info", f"{path.name} is already the model in use")
            return None
        known = {m.path for m in self.models()}
        if path not in known:
            self.app.settings.remember_bundle(path)
            self.app.save_settings()
        return self.project.open_bundle(path)

    def back_to_demo(self) -> Any:
        """The shipped demo model: with no atlas open, or the demo atlas, the demo atlas reopens with it (it
        was built with that model); another atlas is re-embedded with it (a new generation)."""
        demo_atlas = demo.DemoPaths(self.app.context.data_dir).atlas
        open_atlas = self.app.state.project.atlas_path
        if (demo_atlas / "atlas.json").is_file() and (
                open_atlas is None or is_demo_atlas(open_atlas, self.app.context.data_dir)):
            return self.project.open_atlas(demo_atlas, self.shipped)
        return self.use(self.shipped)
