"""``soundscape`` as a command: the no-display message, and ``--screenshot`` with a selection and a query."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from app.main import no_display_message
from engine.atlas import open_atlas
from engine.inference.encoders import BundleEncoders
from tests.app import independent
from tests.conftest import ROOT
from tests.reaping import run_reaped
from tests.test_torch_free import BLOCK_TORCH


def run_app(args: list[str], tmp_path: Path, block_torch: bool = False,
            **env_changes: str | None) -> subprocess.CompletedProcess[str]:
    """Run ``soundscape`` (``python -m app.main``); ``block_torch`` makes torch unimportable first."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"))
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if block_torch:
        code = BLOCK_TORCH + "import sys\nfrom app.main import main\nsys.exit(main(sys.argv[1:]))\n"
        command = [sys.executable, "-c", code, *args]
    else:
        command = [sys.executable, "-m", "app.main", *args]
    return run_reaped(command, 180, cwd=ROOT, env=env)


def test_without_a_display_it_says_how_to_run_and_exits_0(tmp_path: Path) -> None:
    result = run_app([], tmp_path, DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    assert result.returncode == 0
    assert result.stderr.strip() == no_display_message("soundscape")  # started as python -m app.main
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_without_a_display_the_advice_names_the_program_as_started(tmp_path: Path) -> None:
    """Under `make run` the app is .venv/bin/soundscape, which is not on PATH: the advice must use that path."""
    script = tmp_path / "bin" / "soundscape"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom app.main import main\nsys.exit(main())\n")
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr.strip() == no_display_message("bin/soundscape")


def test_screenshot_with_selection_and_query_prints_the_true_top_tiles(tmp_path: Path, built_atlas: Path,
                                                                     bundle_path: Path, realdata: Path) -> None:
    out = tmp_path / "shot.png"
    clip = realdata / "audio" / "S4A03895_20190522_200000.wav"
    atlas = open_atlas(built_atlas)
    tile = int(np.argsort(np.asarray(atlas.tiles.lon))[len(atlas.tiles.lon) // 2])
    lon, lat = float(atlas.tiles.lon[tile]), float(atlas.tiles.lat[tile])
    # No display and no platform named: --screenshot renders offscreen by itself. Torch is made
    # unimportable: the whole flow (bundle, atlas, front-end, onnxruntime, Qt) must run without it.
    result = run_app(["--screenshot", str(out), "--atlas", str(built_atlas), "--bundle", str(bundle_path),
                      "--size", "1000x700", "--select-lonlat", f"{lon},{lat}", "--query-audio", str(clip),
                      "--print-matches"], tmp_path, block_torch=True, DISPLAY=None, WAYLAND_DISPLAY=None,
                     QT_QPA_PLATFORM=None)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "cfg" / "soundscape-mapper" / "settings.json").exists()  # headless leaves no trace
    image = Image.open(out)
    assert image.size == (1000, 700)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 20  # a rendered window, not a blank image
    matches = json.loads(result.stdout)
    query = BundleEncoders(bundle_path).embed_audio_file(clip)
    expected = independent.top_tiles(atlas, query, len(matches))
    assert [m["tile_id"] for m in matches] == [int(atlas.tiles.ids[i]) for i in expected]
    d = independent.distances(atlas.tiles.embeddings, query, atlas.distance)
    for m, i in zip(matches, expected, strict=True):
        assert m["lon"] == float(atlas.tiles.lon[i]) and m["lat"] == float(atlas.tiles.lat[i])
        assert abs(m["score"] - independent.scores(d[i], atlas.distance)) < 1e-5


def test_screenshot_of_a_missing_atlas_fails_with_the_reason(tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    result = run_app(["--screenshot", str(out), "--atlas", str(tmp_path / "nowhere")], tmp_path,
                     QT_QPA_PLATFORM="offscreen")
    assert result.returncode == 1
    assert f"error: {tmp_path / 'nowhere'}: atlas not found" in result.stderr
    assert out.is_file()  # the window with its error banner is still rendered


def test_bad_options_are_refused_with_a_usage_error(tmp_path: Path) -> None:
    result = run_app(["--screenshot", str(tmp_path / "x.png"), "--select-lonlat", "200,10"], tmp_path,
                     QT_QPA_PLATFORM="offscreen")
    assert result.returncode == 2
    assert "longitude must be in [-180, 180]" in result.stderr
    result = run_app(["--screenshot", str(tmp_path / "x.png"), "--print-matches"], tmp_path,
                     QT_QPA_PLATFORM="offscreen")
    assert result.returncode == 2 and "--print-matches needs --query-audio or --record-seconds" in result.stderr
