"""What the app needs to run installed or frozen: where its resources are, and a clear reason when this
installation cannot train (no PyTorch: the ``app``-only install and the desktop bundle)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.services import project
from app.services.training import ENGINE_MODULES, engine_unavailable_reason
from tests.conftest import ROOT


def test_resources_in_a_checkout_are_the_checkouts() -> None:
    assert project.resources_dir() == ROOT / "resources"
    assert (project.shipped_bundle_path() / "manifest.json").is_file()


def test_resources_in_a_frozen_app_are_inside_the_bundle(tmp_path: Path) -> None:
    code = ("import sys; sys._MEIPASS = sys.argv[1]\n"
            "from app.services.project import resources_dir, shipped_bundle_path\n"
            "print(resources_dir()); print(shipped_bundle_path())\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(tmp_path / "resources"), str(tmp_path / "resources" / "demo-bundle")]


def test_no_installed_resources_for_an_unknown_distribution() -> None:
    assert project.installed_resources_dir("no-such-distribution-xyz") is None


def test_training_is_possible_where_the_engine_is_installed() -> None:
    assert engine_unavailable_reason() is None  # this environment has torch, torchvision and onnx


def test_missing_engine_modules_are_named() -> None:
    present = {"torchvision"}
    reason = engine_unavailable_reason(find_spec=lambda name: object() if name in present else None, frozen=False)
    assert reason == ("Training: this installation lacks the engine's torch, onnx; install the engine with "
                      "the Train tab's 'Install the engine…' (or `make engine`); no restart is needed")
    assert engine_unavailable_reason(find_spec=lambda name: object(), frozen=False) is None
    assert set(ENGINE_MODULES) == {"torch", "torchvision", "onnx"}


def test_a_finder_that_refuses_counts_as_missing() -> None:
    def refuse(name: str) -> None:
        raise ImportError(f"{name} is blocked")

    assert "torch, torchvision, onnx" in engine_unavailable_reason(find_spec=refuse, frozen=False)


def test_the_desktop_bundle_points_to_a_full_install() -> None:
    reason = engine_unavailable_reason(find_spec=lambda name: object(), frozen=True)
    assert reason.startswith("Training: the desktop bundle does not include the engine (PyTorch);")
    assert "pip install 'soundscape-mapper[engine]'" in reason
