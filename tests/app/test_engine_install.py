"""Installing the engine from the app, with a fake pip (tests/app/fake_pip.py): the command for a checkout
and for an installed app, the download size from pip's dry-run report, progress from pip's lines, a
failure's one-line error, Cancel ending pip, and the Train tab's flow up to training being possible
without a restart."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.services import engine_install
from app.services.engine_install import (
    EngineInstallError,
    InstallPlan,
    estimate_download,
    install_engine,
    install_plan,
    sized_line,
)
from engine.errors import Cancelled
from engine.progress import Job
from tests.conftest import ROOT

FAKE_PIP = Path(__file__).with_name("fake_pip.py")
SIZES = {"torch-2.11.0-cp311-none-any.whl": 250_000, "onnx-1.17.0-cp311-none-any.whl": 1_500}


@pytest.fixture
def fake_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InstallPlan:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, size in SIZES.items():
        (wheels / name).write_bytes(b"\0" * size)
    monkeypatch.setenv("FAKE_PIP_WHEELS", str(wheels))
    monkeypatch.setenv("FAKE_PIP_PID", str(tmp_path / "pip.pid"))
    return InstallPlan((sys.executable, str(FAKE_PIP)), ("-e", f"{ROOT}[engine]"))


def test_a_checkout_installs_the_engine_extra_editable_with_its_own_python() -> None:
    plan = install_plan(python="/venv/bin/python", frozen=False)
    assert plan is not None
    assert plan.command == ["/venv/bin/python", "-m", "pip", "install", "--progress-bar", "off", "-e",
                            f"{ROOT}[engine]"]
    assert plan.display().endswith(f'-e "{ROOT}[engine]"')
    assert install_plan(frozen=True) is None  # the desktop bundle has no pip to run


def test_an_installed_app_installs_the_engine_extras_requirements(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_install, "_checkout_dir", lambda: None)
    monkeypatch.setattr(engine_install.metadata, "requires", lambda name: [
        "numpy>=1.26", 'torch==2.11.0; extra == "engine"', "onnx >=1.16 ; extra == 'engine'",
        'pytest>=8.0; extra == "dev"', 'PySide6-Essentials<6.12,>=6.7; extra == "app"'])
    plan = install_plan(python="/opt/app/bin/python", frozen=False)
    assert plan is not None and plan.target == ("torch==2.11.0", "onnx>=1.16")
    assert plan.display() == '/opt/app/bin/python -m pip install --progress-bar off "torch==2.11.0" "onnx>=1.16"'


def test_pip_progress_lines_are_read() -> None:
    assert sized_line("  Downloading torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl (915.7 MB)") == \
        ("torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl", 915_700_000)
    assert sized_line("  Using cached onnx-1.17.0.whl (16 kB)") == ("onnx-1.17.0.whl", 16_000)
    assert sized_line("Collecting torch==2.11.0") is None


def test_the_download_size_is_the_sum_of_the_files_pip_would_fetch(fake_pip: InstallPlan) -> None:
    size = estimate_download(fake_pip, Job())
    assert size.total_bytes == sum(SIZES.values()) and size.unknown == 0
    assert sorted(size.packages) == ["onnx 1.17.0", "soundscape-mapper 0.1.0", "torch 2.11.0"]
    assert size.describe() == "252 kB in 3 packages"


def test_an_install_reports_progress_in_bytes(fake_pip: InstallPlan) -> None:
    reports: list[tuple[int, Any, str]] = []
    lines: list[str] = []
    install_engine(fake_pip, Job(lambda d, t, m: reports.append((d, t, m))), sum(SIZES.values()), lines.append)
    assert lines[0] == f"Collecting {ROOT}[engine]"
    assert lines[-1] == "Successfully installed onnx torch"
    # Bytes after each download line: the files in pip's order (sorted names), as their sizes add up.
    downloaded = [d for d, _, m in reports if m.startswith("Downloading")]
    assert downloaded == [1_500, 251_500]
    assert all(t == sum(SIZES.values()) for _, t, _ in reports)


def test_a_failing_pip_gives_its_error_line(fake_pip: InstallPlan, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PIP_MODE", "fail")
    with pytest.raises(EngineInstallError) as err:
        install_engine(fake_pip, Job(), None)
    message = str(err.value)
    assert "exit status 1" in message and "ERROR: Could not find a version that satisfies" in message
    assert "\n" not in message


def test_cancel_ends_pip(fake_pip: InstallPlan, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAKE_PIP_MODE", "hang")
    job = Job()
    outcome: list[BaseException] = []
    lines: list[str] = []

    def run() -> None:
        try:
            install_engine(fake_pip, job, None, lines.append)
        except BaseException as err:  # noqa: B036 - the test inspects what ended the install
            outcome.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    pid_file = tmp_path / "pip.pid"
    deadline = threading.Event()
    for _ in range(200):  # pip has started and said what it collects
        if pid_file.exists() and lines:
            break
        deadline.wait(0.05)
    pid = int(pid_file.read_text())
    job.cancel()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the process is gone (ended and reaped)


def test_the_train_tab_installs_the_engine_then_training_can_start(
        make_app, fake_pip: InstallPlan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    monkeypatch.setenv("FAKE_PIP_SITE", str(site))
    h = make_app()
    engine = h.controller.engine
    # The engine counts as present only once its modules exist where the fake pip writes them.
    engine.find_spec = lambda name: object() if (site / name / "__init__.py").is_file() else None
    engine.plan_override = fake_pip
    engine.refresh()
    panel, box = h.window.train, h.window.train.engine_box
    h.window.tabs.setCurrentWidget(panel)
    assert box.isVisible() and not panel.start_button.isEnabled()
    assert box.reason_label.text().startswith("Training: this installation lacks the engine's torch, torchvision, onnx")
    assert box.command_label.text() == f"Command: {sys.executable} {FAKE_PIP} install --progress-bar off -e " \
                                       f'"{ROOT}[engine]"'
    # A start now is refused with the reason, and makes no run folder.
    assert h.controller.training.start(tmp_path, "tiny", 1) is None
    assert not (tmp_path / "data" / "runs").exists()
    h.qtbot.mouseClick(box.offer_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: h.state.engine.phase == "ready", timeout=20_000)
    assert box.size_label.text() == "It downloads 252 kB in 3 packages. Install now?"
    assert box.install_button.isVisible() and box.cancel_button.isVisible()
    h.qtbot.mouseClick(box.install_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: h.state.engine.phase in ("available", "failed"), timeout=20_000)
    assert h.state.engine.phase == "available", h.state.engine.message
    h.wait_idle()
    assert not box.isVisible() and panel.start_button.isEnabled()
    assert h.state.last_message.text == "The engine is installed; training can start"
    assert h.controller.engine.unavailable_reason() is None


def test_the_train_tab_reports_a_failed_install_and_offers_again(
        make_app, fake_pip: InstallPlan, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PIP_MODE", "fail")
    h = make_app()
    engine = h.controller.engine
    engine.find_spec = lambda name: None
    engine.plan_override = fake_pip
    engine.refresh()
    engine.install()
    h.qtbot.waitUntil(lambda: h.state.engine.phase == "failed", timeout=20_000)
    h.wait_idle()
    box = h.window.train.engine_box
    h.window.tabs.setCurrentWidget(h.window.train)
    assert "ERROR: Could not find a version" in box.size_label.text()
    assert box.offer_button.isVisible() and not box.cancel_button.isVisible()
    assert h.state.last_message.level == "error"


def test_cancel_in_the_train_tab_stops_pip(make_app, fake_pip: InstallPlan, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PIP_MODE", "hang")
    h = make_app()
    engine = h.controller.engine
    engine.find_spec = lambda name: None
    engine.plan_override = fake_pip
    engine.refresh()
    engine.install()
    h.qtbot.waitUntil(lambda: (tmp_path / "pip.pid").exists(), timeout=20_000)
    pid = int((tmp_path / "pip.pid").read_text())
    box = h.window.train.engine_box
    h.window.tabs.setCurrentWidget(h.window.train)
    assert box.cancel_button.isVisible() and box.progress.isVisible()
    h.qtbot.mouseClick(box.cancel_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: h.state.engine.phase == "cancelled", timeout=20_000)
    h.wait_idle()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert box.offer_button.isVisible()
