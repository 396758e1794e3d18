"""The bundle's runtime hook (packaging/rthook_soundscape.py), run in a Python whose ``sys._MEIPASS``
points at a fake bundle: GDAL/PROJ data always from the bundle, PortAudio from the system when it has
one, else the bundled copy, or none at all when asked."""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.conftest import PACKAGING

RUN_HOOK = """
import json, os, runpy, sys
sys._MEIPASS = {meipass!r}
runpy.run_path({hook!r})
import ctypes.util
print(json.dumps({{"GDAL_DATA": os.environ.get("GDAL_DATA"), "PROJ_DATA": os.environ.get("PROJ_DATA"),
                   "PROJ_LIB": os.environ.get("PROJ_LIB"), "portaudio": ctypes.util.find_library("portaudio"),
                   "m": ctypes.util.find_library("m")}}))
"""


@pytest.fixture
def fake_bundle(tmp_path: Path) -> Path:
    internal = tmp_path / "_internal"
    for folder in ("rasterio/gdal_data", "rasterio/proj_data", "portaudio"):
        (internal / folder).mkdir(parents=True)
    (internal / "portaudio" / "libportaudio.so.2").write_bytes(b"")
    (internal / "portaudio" / "libjack.so.0").write_bytes(b"")  # not loadable: the hook must go on
    return internal


def run_hook(meipass: Path, choice: str | None) -> dict[str, str | None]:
    env = dict(os.environ, GDAL_DATA="/elsewhere/gdal", PROJ_DATA="/elsewhere/proj", PROJ_LIB="/elsewhere/proj")
    env.pop("SOUNDSCAPE_PORTAUDIO", None)
    if choice is not None:
        env["SOUNDSCAPE_PORTAUDIO"] = choice
    code = RUN_HOOK.format(meipass=str(meipass), hook=str(PACKAGING / "rthook_soundscape.py"))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_gdal_and_proj_data_are_the_bundled_ones_whatever_the_environment(fake_bundle: Path) -> None:
    out = run_hook(fake_bundle, None)
    assert out["GDAL_DATA"] == str(fake_bundle / "rasterio" / "gdal_data")
    assert out["PROJ_DATA"] == str(fake_bundle / "rasterio" / "proj_data")
    assert out["PROJ_LIB"] is None


def test_portaudio_choice(fake_bundle: Path) -> None:
    system = ctypes.util.find_library("portaudio")  # this machine's answer, without the hook
    bundled = str(fake_bundle / "portaudio" / "libportaudio.so.2")
    assert run_hook(fake_bundle, None)["portaudio"] == (system or bundled)
    assert run_hook(fake_bundle, "auto")["portaudio"] == (system or bundled)
    assert run_hook(fake_bundle, "bundled")["portaudio"] == bundled
    assert run_hook(fake_bundle, "system")["portaudio"] == system
    assert run_hook(fake_bundle, "none")["portaudio"] is None
    # other libraries are looked up as before
    assert run_hook(fake_bundle, "none")["m"] == ctypes.util.find_library("m")


def test_without_a_bundled_copy_only_the_system_is_asked(fake_bundle: Path) -> None:
    (fake_bundle / "portaudio" / "libportaudio.so.2").unlink()
    assert run_hook(fake_bundle, "bundled")["portaudio"] is None
    assert run_hook(fake_bundle, None)["portaudio"] == ctypes.util.find_library("portaudio")
