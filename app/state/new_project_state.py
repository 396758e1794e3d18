"""The New-project-from-recordings dialog's state: the scan, then the fine-tune -> export -> atlas pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.state.observable import Event

# scanning/running are busy; scanned, finished, failed and cancelled wait for the user.
PHASES = ("idle", "scanning", "scanned", "training", "exporting", "building the atlas", "opening",
          "finished", "failed", "cancelled")
BUSY = ("scanning", "training", "exporting", "building the atlas", "opening")


class NewProjectState:
    """What the dialog shows. ``scan`` is the last :class:`app.services.new_project.ScanOutcome`."""

    def __init__(self) -> None:
        self.changed = Event("new_project.changed")
        self.phase = "idle"
        self.message = ""
        self.scan: Any = None
        self.needs_sites_table = False
        self.progress: tuple[int, int | None] = (0, None)  # done, total (None: unknown)
        self.init_note = ""
        self.engine_reason = ""  # why the pipeline cannot run here ("" when it can)
        self.project_dir: Path | None = None
        self.atlas_path: Path | None = None
        self.last_task: Any = None  # the scan or pipeline Task (tests wait on it)

    @property
    def busy(self) -> bool:
        return self.phase in BUSY

    @property
    def can_run(self) -> bool:
        return (self.phase in ("scanned", "failed", "cancelled") and self.scan is not None
                and self.scan.usable > 0)  # without the engine the button explains and points to the install

    def set_phase(self, phase: str, message: str | None = None) -> None:
        self.phase = phase
        if message is not None:
            self.message = message
        if phase in ("scanning", "training"):
            self.progress = (0, None)
        self.changed.emit()

    def set_progress(self, done: int, total: int | None, message: str = "") -> None:
        self.progress = (done, total)
        if message:
            self.message = message
        self.changed.emit()

    def set_scan(self, outcome: Any) -> None:
        self.scan = outcome
        self.needs_sites_table = bool(outcome is not None and outcome.no_position)
        self.phase = "scanned"
        self.message = (f"{outcome.no_position} file(s) have no position: choose the sites table and scan again"
                        if self.needs_sites_table else "Scanned")
        self.changed.emit()
