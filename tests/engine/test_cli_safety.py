"""Both command lines: --version, a quiet end when a pipe's reader goes away, and bad training options
refused with one line before a run folder exists."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.cli import main
from tests.conftest import ROOT


@pytest.mark.parametrize("module, prog", [("engine.cli", "soundscape-engine"), ("app.main", "soundscape")])
def test_version_flag_prints_the_package_version(module: str, prog: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    entry = __import__(module, fromlist=["main"]).main
    with pytest.raises(SystemExit) as stop:
        entry(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"{prog} {version('soundscape-mapper')}"


def _run_into_closed_pipe(argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``python -m ...argv`` with stdout a pipe whose reader is already gone (what `| head` leaves)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, whatever the timing
    try:
        return subprocess.run([sys.executable, "-m", *argv], stdout=write_end, stderr=subprocess.PIPE,
                              cwd=ROOT, timeout=120, text=True)
    finally:
        os.close(write_end)


def test_engine_output_into_a_closed_pipe_ends_without_traceback(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    sf.write(wav, 0.1 * np.sin(np.arange(22050) * 0.05).astype(np.float32), 22050)
    done = _run_into_closed_pipe(["engine.cli", "audio-info", str(wav), str(wav), "--json"])
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr


def test_app_output_into_a_closed_pipe_ends_quietly() -> None:
    """The app's only stdout output (--print-matches) needs a display and an atlas; its entry point is
    wired through the same guard, shown here with a stand-in for the app that prints 100,000 characters."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    code = ("import sys, app.main as m; m._main = lambda argv: print('x' * 100_000) or 0; "
            "sys.exit(m.main([]))")
    try:
        done = subprocess.run([sys.executable, "-c", code], stdout=write_end, stderr=subprocess.PIPE, cwd=ROOT,
                              timeout=120, text=True)
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_broken_pipe_that_is_not_stdout_is_not_hidden(tmp_path: Path) -> None:
    """stdout is a file: a BrokenPipeError then comes from elsewhere (a worker's pipe) and is not swallowed."""
    from engine.cli_output import exit_quietly_on_broken_pipe

    code = ("import sys; from engine.cli_output import exit_quietly_on_broken_pipe as g; "
            "sys.exit(g(lambda: (_ for _ in ()).throw(BrokenPipeError(32, 'a worker went away'))))")
    with open(tmp_path / "out.txt", "w") as out:
        done = subprocess.run([sys.executable, "-c", code], stdout=out, stderr=subprocess.PIPE, cwd=ROOT,
                              timeout=120, text=True)
    assert done.returncode == 1 and "a worker went away" in done.stderr
    assert exit_quietly_on_broken_pipe(lambda: 7) == 7


@pytest.mark.parametrize("option, value", [
    ("--lr", "nan"), ("--lr", "inf"), ("--lr", "-1e-3"), ("--lr", "0"), ("--seed", "-1"), ("--epochs", "0"),
    ("--batch-size", "0"), ("--batch-size", "1"), ("--workers", "-1"), ("--block-km", "nan"),
])
def test_bad_training_numbers_are_refused_before_the_run_folder_exists(
        option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    rc = main(["train", "--data", str(tmp_path / "data"), "--preset", "tiny", "--out", str(out), f"{option}={value}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith(f"error: {option}") and value.lstrip("-") in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("inside", [False, True])
def test_train_out_that_is_a_file_is_one_line(inside: bool, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    out = a_file / "run" if inside else a_file
    rc = main(["train", "--data", str(tmp_path), "--preset", "tiny", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "file, not a folder" in err[0] and str(a_file) in err[0], err
    assert a_file.read_text() == "not a folder"
