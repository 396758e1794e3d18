"""The training engine from the Train tab: is it installed; if not, its size, then pip in the background."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.services.engine_install import (
    DownloadSize,
    InstallPlan,
    estimate_download,
    install_engine,
    install_plan,
)
from app.services.training import engine_unavailable_reason
from app.workers import Task

if TYPE_CHECKING:
    from app.controllers.app_controller import AppController

log = logging.getLogger(__name__)


class EngineActions:
    """Find the engine, measure what installing it downloads, install it, cancel.

    Attributes:
        find_spec: the module finder used to look for torch (tests pass a fake).
        plan_override: the install plan to use instead of this interpreter's pip (tests: a fake pip).
        size_of: how a file's size is found from its URL (None: a local stat or an HTTP HEAD request).
    """

    def __init__(self, app: AppController) -> None:
        self.app = app
        self.find_spec: Callable[[str], Any] = importlib.util.find_spec
        self.plan_override: InstallPlan | None = None
        self.size_of: Callable[[str], int | None] | None = None
        self.task: Task | None = None

    def plan(self) -> InstallPlan | None:
        return self.plan_override or install_plan()

    def unavailable_reason(self) -> str | None:
        """Why training cannot start now, or None (looked up afresh every time: pip may just have run)."""
        return engine_unavailable_reason(self.find_spec)

    def refresh(self) -> bool:
        """Look for the engine again and update the state. Returns whether training can start."""
        importlib.invalidate_caches()  # site-packages may have gained torch since the last look
        state = self.app.state.engine
        reason = self.unavailable_reason()
        state.reason = reason or ""
        if reason is None:
            state.set_phase("available")
            return True
        plan = self.plan()
        state.command = plan.display() if plan is not None else ""
        if plan is None:
            state.set_phase("unavailable")
        elif state.phase in ("available", "unavailable"):
            state.set_phase("missing")
        else:
            state.changed.emit()
        return False

    def check_size(self) -> Task | None:
        """Ask pip what installing the engine would download (a dry run in the background)."""
        plan = self.plan()
        state = self.app.state.engine
        if plan is None or state.busy:
            return None
        state.download, state.expected_bytes, state.fetched_bytes, state.last_line = "", None, 0, ""
        state.set_phase("sizing", "")
        self.task = self.app.runner.submit(
            "Finding the engine's download size", lambda job: estimate_download(plan, job, self.size_of),
            on_success=self._sized, on_error=self._failed, on_cancelled=self._cancelled)
        return self.task

    def _sized(self, size: DownloadSize) -> None:
        state = self.app.state.engine
        state.download = size.describe()
        state.expected_bytes = size.total_bytes or None
        state.set_phase("ready")

    def install(self) -> Task | None:
        """Run the install command in the background (after :meth:`check_size`, or straight away)."""
        plan = self.plan()
        state = self.app.state.engine
        if plan is None or state.busy:
            return None
        state.fetched_bytes, state.last_line = 0, ""
        state.set_phase("installing", "")
        expected = state.expected_bytes
        self.task = self.app.runner.submit(
            "Installing the engine", lambda job: install_engine(plan, job, expected),
            on_progress=lambda done, total, line: state.set_progress(done, total, line),
            on_success=self._installed, on_error=self._failed, on_cancelled=self._cancelled)
        return self.task

    def _installed(self, _result: Any) -> None:
        if self.refresh():
            self.app.state.engine.message = "The engine is installed; training can start"
            self.app.state.tell("info", "The engine is installed; training can start")
        else:
            reason = self.app.state.engine.reason
            self._failed(f"pip finished, but the engine is still missing: {reason}")

    def _failed(self, message: str) -> None:
        self.app.state.engine.set_phase("failed", message)
        self.app.error(message)

    def _cancelled(self) -> None:
        self.app.state.engine.set_phase("cancelled", "Cancelled; nothing more is downloaded")

    def cancel(self) -> None:
        """Stop the dry run or the install (pip is terminated)."""
        if self.task is not None and self.task.running:
            self.task.cancel()
        elif self.app.state.engine.phase == "ready":
            self.app.state.engine.set_phase("missing", "")

    def shutdown(self) -> None:
        self.cancel()
