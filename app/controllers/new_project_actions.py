"""File > New project from recordings…: the scan and the fine-tune -> export -> atlas pipeline in the
background, then the new atlas opened with its new bundle."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.services import new_project as service
from app.services.project import shipped_bundle_path
from app.state.new_project_state import NewProjectState
from app.workers import Task

if TYPE_CHECKING:
    from app.controllers.app_controller import AppController

log = logging.getLogger(__name__)


class NewProjectActions:
    """Scan, run the pipeline, cancel, open the result.

    Attributes:
        state: what the dialog renders.
        commands: builds the engine command lines (tests put fakes here).
        init_bundle: the bundle whose training run is fine-tuned (None: the shipped demo bundle).
        extra_train_args: more ``train`` options (tests keep runs small).
    """

    def __init__(self, app: AppController) -> None:
        self.app = app
        self.state = NewProjectState()
        self.commands: Callable[[service.PipelineSpec], list[tuple[str, list[str], Path]]] = service.pipeline_commands
        self.init_bundle: Path | None = None
        self.extra_train_args: tuple[str, ...] = ()
        self.task: Task | None = None
        self._request: service.ScanRequest | None = None

    # ------------------------------------------------------------------------------------ scan

    def new_project_dir(self, recordings: Path) -> Path:
        name = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(recordings).name) or "campaign"
        return self.app.context.data_dir / "projects" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"

    def scan(self, recordings: str | Path, imagery: list[str | Path], sites_table: str | Path | None = None) -> Task | None:
        """Scan the recorder folder into a new project's campaign folder (a rescan reuses the folder)."""
        state = self.state
        if state.busy:
            self.app.error("The new project is busy; cancel it first")
            return None
        request = service.ScanRequest(Path(recordings), tuple(Path(p) for p in imagery),
                                      Path(sites_table) if sites_table else None)
        if state.project_dir is None or self._request is None or self._request.recordings != request.recordings:
            state.project_dir = self.new_project_dir(request.recordings)
        self._request = request
        state.engine_reason = self.app.engine.unavailable_reason() or ""
        state.set_phase("scanning", f"Scanning {request.recordings}…")
        campaign_dir = state.project_dir / "campaign"
        self.task = self.app.runner.submit(
            "Scanning the recordings", lambda job: service.scan(request, campaign_dir, job),
            on_progress=lambda done, total, message: state.set_progress(done, total, f"{done} file(s) read; {message}"),
            on_success=state.set_scan, on_error=self._failed,
            on_cancelled=lambda: state.set_phase("cancelled", "Scan cancelled; nothing was written"))
        state.last_task = self.task
        return self.task

    # ------------------------------------------------------------------------------------ pipeline

    def init_run(self) -> Path | None:
        """The run the shipped demo model was trained in, when it is on this machine."""
        return service.default_init_run(self.init_bundle or shipped_bundle_path())

    def run(self) -> Task | None:
        """Fine-tune -> export -> atlas build in the background, then open the atlas."""
        state = self.state
        reason = self.app.engine.unavailable_reason()
        if reason:
            state.engine_reason = reason
            state.set_phase(state.phase, f"{reason}. The Train tab's 'Install the engine…' installs it.")
            return None
        if not state.can_run:
            self.app.error("Scan the recordings first (a campaign with usable files is needed)")
            return None
        scan = state.scan
        if not scan.footprints:
            message = ("The campaign has no imagery: add the GeoTIFFs of the area (the sites' image chips are cut "
                       "from them) and scan again")
            state.set_phase(state.phase, message)
            self.app.error(message)
            return None
        spec = service.PipelineSpec(campaign_dir=scan.campaign_dir, project_dir=state.project_dir,
                                    imagery=self._request.imagery if self._request else (),
                                    init_run=self.init_run(),
                                    ground_size_m=service.bundle_ground_size_m(self.init_bundle or shipped_bundle_path()),
                                    extra_train_args=self.extra_train_args).next_free()
        state.init_note = spec.describe_init()
        state.set_phase("training", state.init_note)
        self.task = self.app.runner.submit(
            "New project from recordings", lambda job: service.run_pipeline(spec, job, job.publish, self.commands),
            on_progress=lambda done, total, message: state.set_progress(done, total, message),
            on_publish=self._event, on_success=lambda atlas: self._built(atlas, spec.bundle_dir),
            on_error=self._failed, on_cancelled=self._cancelled)
        state.last_task = self.task
        return self.task

    def _event(self, record: dict[str, Any]) -> None:
        if record.get("event") == "app_phase":
            self.state.set_phase(str(record["phase"]), f"{str(record['phase']).capitalize()}…")

    def _built(self, atlas: Path, bundle: Path) -> None:
        state = self.state
        state.atlas_path = atlas
        state.set_phase("opening", f"Opening {atlas}")

        def opened(ok: bool, message: str) -> None:
            if ok:
                state.set_phase("finished", f"Opened the new atlas {atlas}")
            else:
                state.set_phase("failed", f"The atlas was built in {atlas} but could not be opened: {message}")

        self.app.project.open_atlas(atlas, bundle, then=opened)

    def _failed(self, message: str) -> None:
        self.state.set_phase("failed", message)

    def _cancelled(self) -> None:
        self.state.set_phase("cancelled", "Cancelled; what was finished is kept in "
                             f"{self.state.project_dir}")

    def cancel(self) -> None:
        """Stop the scan, or the running engine step (SIGTERM)."""
        if self.task is not None and self.task.running:
            self.task.cancel()

    def shutdown(self) -> None:
        self.cancel()
