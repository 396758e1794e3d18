"""``soundscape-engine atlas ...`` from the command line: JSON answers and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod

from engine.atlas import open_atlas
from engine.cli import main
from tests.engine.atlas.handmade import HandmadeBundle


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_build_and_query_from_the_command_line(tmp_path: Path, bundle: HandmadeBundle, imagery: Path,
                                               realdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = realdata / "audio" / "spinetail.wav"
    table = tmp_path / "pairs.csv"
    table.write_text(f"id,longitude,latitude,image,audio\nbird,-60.0,-10.0,,{rec}\nnight,20.0,50.0,,"
                     f"{realdata / 'audio' / 'S4A03895_20190522_000000.wav'}\n")
    atlas_dir = tmp_path / "atlas"
    assert main(["atlas", "build", "--bundle", str(bundle.path), "--out", str(atlas_dir), "--imagery",
                 str(imagery / "world.rgb.tif"), "--tile-px", "64", "--recordings", str(table)]) == 0
    assert "+32 tiles, +2 recordings" in capsys.readouterr().out

    assert main(["atlas", "query", "--atlas", str(atlas_dir), "--lonlat=-60.5,-10.2", "--top-k", "1", "--json"]) == 0
    out = _json(capsys)
    # 45-degree tiles from (-180, 90): (-60.5, -10.2) is column 2, row 2 -> id 2 * 8 + 2 = 18
    assert out["tile"]["id"] == 18 and out["tile"]["lon"] == -67.5 and out["tile"]["lat"] == -22.5
    _, _, metres = Geod(ellps="WGS84").inv(-67.5, -22.5, -60.0, -10.0)
    assert out["nearest"][0]["id"] == "bird" and out["nearest"][0]["km"] == pytest.approx(metres / 1000, rel=5e-3)
    assert main(["atlas", "query", "--atlas", str(atlas_dir), "--tile", "18", "--json"]) == 0
    assert _json(capsys)["tile"]["footprint"][0] == [-90.0, 0.0]

    assert main(["atlas", "query", "--atlas", str(atlas_dir), "--audio", str(rec), "--top-k", "3", "--json",
                 "--all-scores"]) == 0
    out = _json(capsys)
    atlas = open_atlas(atlas_dir)
    d = np.linalg.norm(np.asarray(atlas.tiles.embeddings, np.float64) - atlas.recordings.embeddings[0], axis=1)
    np.testing.assert_allclose(out["scores"], 1 / (1 + d), rtol=1e-3)
    assert [t["id"] for t in out["top"]] == list(np.argsort(d)[:3])
    # Without --all-scores the answer is only the top k (the issue: --top-k 3 printed all 32 scores).
    assert main(["atlas", "query", "--atlas", str(atlas_dir), "--audio", str(rec), "--top-k", "3", "--json"]) == 0
    out = _json(capsys)
    assert "scores" not in out and [t["id"] for t in out["top"]] == list(np.argsort(d)[:3])


def test_command_line_errors_are_one_line(tmp_path: Path, bundle: HandmadeBundle, imagery: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["atlas", "build", "--bundle", str(tmp_path / "nobundle"), "--out", str(tmp_path / "a")],
         "model bundle not found"),
        (["atlas", "query", "--atlas", str(tmp_path / "none"), "--tile", "0"], "atlas not found"),
        (["atlas", "build", "--bundle", str(bundle.path), "--out", str(tmp_path / "b"), "--imagery",
          str(imagery / "RGB.byte.tif"), "--tile-size-m", "100"], "--tile-size-m"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(err) == 1 and expected in err[0], err
    assert main(["atlas", "query", "--atlas", str(tmp_path / "b"), "--lonlat=abc", "--json"]) == 2
    assert "error: --lonlat: 'abc' is not LON,LAT" in capsys.readouterr().err


def test_a_stop_between_the_build_and_its_indices_stops_the_command(tmp_path: Path, bundle: HandmadeBundle,
                                                                    imagery: Path, realdata: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """SIGTERM after the tiles are in but before the acoustic-indices phase took over the handler: the
    command stops with status 130 (not killed by the default action), and running it again finishes."""
    import os
    import signal

    import engine.commands.atlas as commands

    rec = realdata / "audio" / "S4A03895_20190522_000000.wav"
    table = tmp_path / "pairs.csv"
    table.write_text(f"id,longitude,latitude,image,audio\nnight,20.0,50.0,,{rec}\n")
    args = ["atlas", "build", "--bundle", str(bundle.path), "--out", str(tmp_path / "atlas"), "--imagery",
            str(imagery / "world.rgb.tif"), "--tile-px", "64", "--recordings", str(table)]
    finish = commands._finish

    def finish_then_signal(report, err):  # noqa: ANN001, ANN202 - the signal lands in the gap
        status = finish(report, err)
        os.kill(os.getpid(), signal.SIGTERM)
        return status

    monkeypatch.setattr(commands, "_finish", finish_then_signal)
    assert main(args) == 130
    assert "stopped: run the same command again" in capsys.readouterr().err
    assert open_atlas(tmp_path / "atlas").indices is None  # the indices phase did not start
    monkeypatch.setattr(commands, "_finish", finish)
    assert main(args) == 0
    assert open_atlas(tmp_path / "atlas").indices is not None
