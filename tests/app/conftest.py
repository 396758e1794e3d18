"""App test fixtures: real bundle and atlases (session-scoped), the window in temporary folders, and
a check that fails any test leaking a top-level window, a thread or an active timer."""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app import fixtures_data
from tests.conftest import REALDATA

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


# ------------------------------------------------------------------------------------ leak check

def _active_timers() -> list[Any]:
    from PySide6.QtCore import QTimer
    from shiboken6 import isValid

    found = []
    for obj in gc.get_objects():
        try:
            if issubclass(type(obj), QTimer) and isValid(obj) and obj.isActive():
                found.append(obj)
        except (RuntimeError, ReferenceError):
            continue
    return found


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a visible top-level window, a running thread or an active QTimer."""
    uses_qt = "qtbot" in request.fixturenames or "qapp" in request.fixturenames
    threads_before = set(threading.enumerate())
    if not uses_qt:
        yield
        return
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    windows_before = {id(w) for w in app.topLevelWidgets() if w.isVisible()} if app else set()
    timers_before = {id(t) for t in _active_timers()}
    yield
    app = QApplication.instance()
    if app is not None:
        for _ in range(3):
            app.processEvents()
    deadline = time.monotonic() + 5.0
    leaked_threads = []
    for t in threading.enumerate():
        if t not in threads_before and t.is_alive():
            t.join(timeout=max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                leaked_threads.append(t.name)
    windows = [w for w in (app.topLevelWidgets() if app else []) if w.isVisible() and id(w) not in windows_before]
    timers = [t for t in _active_timers() if id(t) not in timers_before]
    problems = []
    if leaked_threads:
        problems.append(f"threads still running: {leaked_threads}")
    if windows:
        problems.append(f"windows left open: {[type(w).__name__ + ' ' + w.windowTitle() for w in windows]}")
        for w in windows:
            w.close()
    if timers:
        problems.append(f"timers still active: {[(t.objectName() or repr(t), t.interval()) for t in timers]}")
        for t in timers:
            t.stop()
    if problems:
        pytest.fail("; ".join(problems))


# ------------------------------------------------------------------------------------------ data

@pytest.fixture(scope="session")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped demo bundle, or (until it is in resources/) an untrained model exported for real."""
    if (fixtures_data.SHIPPED_BUNDLE / "manifest.json").is_file():
        return fixtures_data.SHIPPED_BUNDLE
    return fixtures_data.export_untrained_bundle(tmp_path_factory.mktemp("bundle") / "bundle")


@pytest.fixture(scope="session")
def other_bundle_path(tmp_path_factory: pytest.TempPathFactory, bundle_path: Path) -> Path:
    """A second bundle with another id (same weights, a different ONNX file), for mismatch tests."""
    return fixtures_data.variant_bundle(bundle_path, tmp_path_factory.mktemp("bundle2") / "bundle2")


@pytest.fixture(scope="session")
def built_atlas(tmp_path_factory: pytest.TempPathFactory, bundle_path: Path) -> Path:
    """An atlas built by the real builder from the real Landsat scene and the real recordings."""
    if not (REALDATA / "audio").is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent (it lives beside the project, in ../shared)")
    return fixtures_data.build_test_atlas(tmp_path_factory.mktemp("atlas") / "atlas", bundle_path, REALDATA)


@pytest.fixture
def atlas_copy(tmp_path: Path, built_atlas: Path) -> Path:
    """A private copy of the atlas for tests that change it."""
    out = tmp_path / "atlas"
    shutil.copytree(built_atlas, out)
    return out


# ---------------------------------------------------------------------------------------- window

class AppHarness:
    """The real window, state and controller in temporary folders."""

    def __init__(self, window: Any, state: Any, controller: Any, qtbot: Any) -> None:
        self.window, self.state, self.controller, self.qtbot = window, state, controller, qtbot

    def open(self, atlas: Path, bundle: Path | None = None) -> None:
        """Open an atlas through the controller and wait for it."""
        self.controller.project.open_atlas(atlas, bundle)
        self.wait_idle()
        assert self.state.project.atlas is not None, self.state.last_message

    def wait_idle(self, timeout_s: float = 60.0) -> None:
        self.qtbot.waitUntil(lambda: not self.controller.runner.tasks, timeout=int(timeout_s * 1000))


@pytest.fixture
def make_app(qtbot: Any, tmp_path: Path, bundle_path: Path) -> Iterator[Any]:
    """A factory: ``make_app(backend=None, **context)`` -> :class:`AppHarness` (closed after the test)."""
    from app.controllers import AppContext
    from app.launch import build_app
    from app.services.audio_io import AudioBackend

    made: list[AppHarness] = []

    def make(backend: Any = None, **context: Any) -> AppHarness:
        context.setdefault("extra_bundles", [bundle_path])
        ctx = AppContext(config_dir=tmp_path / "config", data_dir=tmp_path / "data", **context)
        window, state, controller = build_app(ctx, backend or AudioBackend(None, "no audio in this test"))
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        harness = AppHarness(window, state, controller, qtbot)
        made.append(harness)
        return harness

    yield make
    for h in made:
        h.window.close()
        h.window.deleteLater()
