"""``pip install ".[app]"`` in a fresh virtual environment gives a working ``soundscape`` without PyTorch.

It is the set `make run` installs (checked against the Makefile's own recipe below); `make engine` and the
Train tab's "Install the engine…" add the ``engine`` extra later, without a restart (checked here with a
fake pip that writes the engine's modules where the running app looks for them).

The repository's files are copied to a temporary folder, installed from there (a real wheel build, not
an editable install) and the copy is deleted, so nothing of the source tree can be used afterwards. In
that environment: torch and the engine extra's packages are not importable; the shipped resources come
from the installed data; every app module and torch-free engine module imports; the torch-free engine
commands make a tiny demo world and its atlas with the installed demo bundle; ``soundscape
--screenshot`` renders it offscreen and answers a sound search exactly as the engine does here; and the
Train panel says that training needs the engine. pip's cache (filled by ``make test``'s own install)
and the package registry provide the packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.atlas import open_atlas
from engine.inference.encoders import BundleEncoders
from tests.app import independent
from tests.conftest import ROOT
from tests.test_torch_free import PORTABLE_MODULES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # a pip install into a fresh venv

SOURCES = ("pyproject.toml", "README.md", "app", "engine", "resources")
ENGINE_EXTRA_MODULES = ("torch", "torchvision", "torchaudio", "onnx", "matplotlib", "safetensors", "tensorboard")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def app_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the repository installed with the ``app`` extra only."""
    root = tmp_path_factory.mktemp("app_install")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                             "-q", f"{source}[app]"], capture_output=True, text=True, timeout=540)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    shutil.rmtree(source)  # from here on only the installed copy exists
    return venv


def run_in(venv: Path, args: list[str], cwd: Path, **env_changes: str) -> subprocess.CompletedProcess[str]:
    """Run a program of the environment with none of the test's own paths (cwd outside the checkout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DISPLAY",
                                                             "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(PATH=f"{venv / 'bin'}:/usr/bin:/bin", XDG_CONFIG_HOME=str(cwd / "cfg"),
               XDG_DATA_HOME=str(cwd / "data"), XDG_CACHE_HOME=str(cwd / "cache"), **env_changes)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def python_in(venv: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_in(venv, [str(venv / "bin" / "python"), "-c", code], cwd)


def test_the_engine_extra_is_not_installed(app_venv: Path, tmp_path: Path) -> None:
    code = ("import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None "
            f"for m in {list(ENGINE_EXTRA_MODULES)!r}}}))")
    result = python_in(app_venv, code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {m: False for m in ENGINE_EXTRA_MODULES}
    result = python_in(app_venv, "import torch", tmp_path)
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr


def test_the_installed_copy_and_its_resources_are_used(app_venv: Path, tmp_path: Path) -> None:
    code = ("import json, app, engine; from app.services.project import resources_dir; "
            "print(json.dumps([app.__file__, engine.__file__, str(resources_dir())]))")
    result = python_in(app_venv, code, tmp_path)
    assert result.returncode == 0, result.stderr
    app_file, engine_file, resources = (Path(p) for p in json.loads(result.stdout))
    venv = app_venv.resolve()
    assert venv in app_file.parents and venv in engine_file.parents
    assert resources == venv / "share" / "soundscape-mapper" / "resources"
    for name in ("demo-bundle/manifest.json", "demo-bundle/image_encoder.onnx", "demo-bundle/audio_encoder.onnx",
                 "style.qss", "icons/soundscape.svg"):
        assert sha256(resources / name) == sha256(ROOT / "resources" / name), name


def test_every_app_module_and_torch_free_engine_module_imports(app_venv: Path, tmp_path: Path) -> None:
    code = ("import importlib, pkgutil, sys, app\n"
            "names = [m.name for m in pkgutil.walk_packages(app.__path__, 'app.')]\n"
            f"names += {PORTABLE_MODULES!r} + ['sounddevice', 'onnxruntime', 'rasterio', 'soundfile', 'soxr']\n"
            "for name in names:\n"
            "    importlib.import_module(name)\n"
            "assert not any(m.split('.')[0] == 'torch' for m in sys.modules)\n"
            "print(len(names))\n")
    result = python_in(app_venv, code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout) > len(PORTABLE_MODULES)


def test_soundscape_renders_a_demo_atlas_and_searches_like_the_engine(app_venv: Path, tmp_path: Path) -> None:
    bin_dir = app_venv / "bin"
    resources = app_venv / "share" / "soundscape-mapper" / "resources"
    world, atlas_dir, shot = tmp_path / "world", tmp_path / "atlas", tmp_path / "shot.png"
    made = run_in(app_venv, [str(bin_dir / "soundscape-engine"), "demo-world", "--out", str(world), "--size", "tiny",
                             "--workers", "1"], tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    built = run_in(app_venv, [str(bin_dir / "soundscape-engine"), "atlas", "build", "--bundle",
                              str(resources / "demo-bundle"), "--out", str(atlas_dir), "--imagery",
                              str(world / "mosaic.tif"), "--recordings", str(world / "pairs.csv")], tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    clip = sorted((world / "audio").glob("*.flac"))[5]
    # No display and no platform named: --screenshot renders offscreen by itself.
    result = run_in(app_venv, [str(bin_dir / "soundscape"), "--screenshot", str(shot), "--atlas", str(atlas_dir),
                               "--size", "800x600", "--query-audio", str(clip), "--print-matches"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    image = Image.open(shot)
    assert image.size == (800, 600)
    assert np.asarray(image.convert("RGB"), dtype=np.float32).std() > 20  # a rendered window, not a blank one
    atlas = open_atlas(atlas_dir)
    query = BundleEncoders(ROOT / "resources" / "demo-bundle").embed_audio_file(clip)
    matches = json.loads(result.stdout)
    expected = independent.top_tiles(atlas, query, len(matches))
    assert [m["tile_id"] for m in matches] == [int(atlas.tiles.ids[i]) for i in expected]


def make_dry_run(target: str, venv: Path) -> list[str]:
    """The commands `make` would run for ``target`` with its venv at ``venv`` (nothing is run)."""
    # --no-print-directory: under `make test` (CI) this make is nested and would add "Entering directory" lines
    result = subprocess.run(["make", "-n", "--no-print-directory", target, f"VENV={venv}", f"DEMO={venv}/demo"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_installs_the_app_set_once_and_make_engine_adds_the_engine(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    installs = [line for line in make_dry_run("run", venv) if " -m pip install " in line]
    assert len(installs) == 1 and installs[0].endswith('-e ".[app]"')  # the set the app_venv fixture installs
    assert [line for line in make_dry_run("engine", venv) if " -m pip install " in line][0].endswith('-e ".[engine]"')
    assert [line for line in make_dry_run("test", venv) if " -m pip install " in line][0].endswith(
        '-e ".[engine,app,dev,scale]"')
    # A second `make run`: the stamps are newer than pyproject.toml, so nothing is installed again.
    venv.mkdir()
    for stamp in (".created", ".installed-app"):
        (venv / stamp).touch()
    second = make_dry_run("run", venv)
    assert not any(" -m pip install " in line or " -m venv " in line for line in second)
    assert second[-1] == f"{venv}/bin/soundscape"
    assert [line for line in make_dry_run("engine", venv) if " -m pip install " in line]  # not installed yet


def test_the_app_installs_the_engine_without_a_restart(app_venv: Path, tmp_path: Path) -> None:
    stubs = tmp_path / "site"  # on the app's path from the start, empty until the (fake) pip writes into it
    stubs.mkdir()
    python = app_venv / "bin" / "python"
    code = ("import os, sys, time\n"
            "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "from pathlib import Path\n"
            "from PySide6.QtWidgets import QApplication\n"
            "from app.controllers import AppContext\n"
            "from app.launch import build_app\n"
            "from app.services.engine_install import InstallPlan\n"
            "qt = QApplication([])\n"
            "window, state, controller = build_app(AppContext(config_dir=Path('cfg'), data_dir=Path('data'),"
            " save_settings=False))\n"
            "print(state.engine.phase)\n"
            "print(state.engine.command)\n"
            "print(window.train.start_button.isEnabled())\n"
            f"controller.engine.plan_override = InstallPlan((sys.executable, {str(ROOT / 'tests/app/fake_pip.py')!r}),"
            " ('torch',))\n"
            "controller.engine.install()\n"
            "deadline = time.monotonic() + 60\n"
            "while state.engine.phase == 'installing' and time.monotonic() < deadline:\n"
            "    qt.processEvents(); time.sleep(0.02)\n"
            "controller.runner.wait_idle(30)\n"
            "print(state.engine.phase)\n"
            "print(window.train.start_button.isEnabled())\n"
            "window.close()\n")
    result = run_in(app_venv, [str(python), "-c", code], tmp_path, PYTHONPATH=str(stubs), FAKE_PIP_SITE=str(stubs))
    assert result.returncode == 0, result.stderr[-3000:]
    before, command, start_before, after, start_after = result.stdout.splitlines()[:5]
    assert (before, start_before) == ("missing", "False")
    # An app installed from a wheel installs the engine extra's requirements, as pyproject.toml lists them.
    engine_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["engine"]
    assert command == f"{python} -m pip install --progress-bar off " + " ".join(
        f'"{r.replace(" ", "")}"' for r in engine_extra)
    assert (after, start_after) == ("available", "True")
    assert sorted(p.name for p in stubs.iterdir()) == ["onnx", "torch", "torchvision"]


def test_training_says_the_engine_is_missing(app_venv: Path, tmp_path: Path) -> None:
    code = ("import os, sys\n"
            "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "from pathlib import Path\n"
            "from PySide6.QtWidgets import QApplication\n"
            "from app.controllers import AppContext\n"
            "from app.launch import build_app\n"
            "qt = QApplication([])\n"
            "window, state, controller = build_app(AppContext(config_dir=Path('cfg'), data_dir=Path('data'),"
            " save_settings=False))\n"
            "task = controller.training.start(Path('.'), 'tiny', 1)\n"
            "print(task is None)\n"
            "print(state.last_message.text)\n"
            "window.close()\n")
    result = python_in(app_venv, code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    started, message = result.stdout.splitlines()[:2]
    assert started.split()[0] == "True"
    assert message.startswith("Training: this installation lacks the engine's torch, torchvision, onnx;")
    assert not (tmp_path / "data" / "runs").exists()
