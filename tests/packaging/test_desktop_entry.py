"""The desktop integration added to the bundle (packaging/desktop_entry.py): icons rendered from the
SVG, a valid desktop entry, and the script that installs both for a user."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import desktop_entry
import numpy as np
from PIL import Image


def test_icons_are_the_svg_rendered_at_each_size(tmp_path: Path, qapp) -> None:
    # qapp: the session's QApplication is reused (a QGuiApplication made here would break widget tests)
    written = desktop_entry.render_icons(desktop_entry.SVG, tmp_path, sizes=(32, 256))
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "32x32/apps/soundscape-mapper.png", "256x256/apps/soundscape-mapper.png"]
    assert Image.open(written[0]).size == (32, 32)
    icon = np.asarray(Image.open(written[1]).convert("RGBA")).astype(int)
    assert icon.shape == (256, 256, 4)
    # soundscape.svg (64 x 64 units, 4 px per unit here): a rounded square from 4 to 60 filled #2d6a4f, tiles
    # from 10 to 30 (#52b788) and 34 to 54 (#95d5b2) in the top row, nothing outside the square.
    def colour(x_units: float, y_units: float) -> list[int]:
        return icon[int(y_units * 4), int(x_units * 4)].tolist()

    assert colour(0.5, 0.5)[3] == 0
    for (x, y), rgb in {(32, 32): (0x2D, 0x6A, 0x4F), (20, 20): (0x52, 0xB7, 0x88),
                        (44, 20): (0x95, 0xD5, 0xB2)}.items():
        assert np.allclose(colour(x, y), [*rgb, 255], atol=2), (x, y, colour(x, y))


def test_integration_files_and_the_install_script(tmp_path: Path, qapp) -> None:
    bundle = tmp_path / "Soundscape Mapper"  # a folder name with a space
    bundle.mkdir()
    (bundle / "soundscape").write_text("#!/bin/sh\n")
    (bundle / "soundscape").chmod(0o755)
    files = desktop_entry.add_desktop_integration(bundle)
    assert all(f.is_file() for f in files)
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(bundle / "share" / "applications" / "soundscape-mapper.desktop")
    section = entry["Desktop Entry"]
    assert (section["Type"], section["Name"], section["Icon"]) == ("Application", "Soundscape Mapper", "soundscape-mapper")

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"} | {"HOME": str(home)}
    subprocess.run([str(bundle / "install-desktop-entry.sh")], env=env, check=True, capture_output=True, timeout=60)
    data = home / ".local" / "share"
    installed = data / "applications" / "soundscape-mapper.desktop"
    exec_line = next(line for line in installed.read_text().splitlines() if line.startswith("Exec="))
    assert exec_line == f'Exec="{bundle}/soundscape"'
    icons = sorted(p.relative_to(data / "icons" / "hicolor").as_posix() for p in data.glob("icons/hicolor/*/apps/*"))
    assert icons == sorted([f"{n}x{n}/apps/soundscape-mapper.png" for n in desktop_entry.ICON_SIZES]
                           + ["scalable/apps/soundscape-mapper.svg"])
    validator = shutil.which("desktop-file-validate")
    if validator:
        result = subprocess.run([validator, str(installed)], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout

    subprocess.run([str(bundle / "install-desktop-entry.sh"), "--remove"], env=env, check=True, capture_output=True)
    assert not installed.exists() and not list(data.glob("icons/hicolor/*/apps/soundscape-mapper.*"))


def test_the_script_refuses_a_folder_without_the_program(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(desktop_entry.LINUX / "install-desktop-entry.sh", bundle)
    result = subprocess.run([str(bundle / "install-desktop-entry.sh")], env=dict(os.environ, HOME=str(tmp_path)),
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert f"{bundle}/soundscape: not found" in result.stderr
