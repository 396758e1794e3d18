"""The run folder across crashes (issue 12): a folder stopped before its first checkpoint restarts, the
log continues from the checkpoint, temporary files of a killed write go, and one writer at a time."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.cli import main
from engine.errors import FolderBusyError, UserInputError
from engine.files import remove_stale_temp_files
from engine.folder_lock import FolderLock
from engine.train.metrics_log import read_metrics, repair_for_resume


def _weights(run: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    return {f"{part}.{k}": v for part in ("image_encoder", "audio_encoder") for k, v in payload[part].items()}


def _stuck_run(tiny_world: dict[str, Path], folder: Path) -> Path:
    """What a run killed before its first checkpoint leaves: config.json, a log, no checkpoint."""
    folder.mkdir()
    shutil.copy(tiny_world["run"] / "config.json", folder / "config.json")
    (folder / "metrics.jsonl").write_text(json.dumps({"event": "start", "step": 0}) + "\n" + '{"event": "st')
    return folder


@pytest.mark.parametrize("how", ["resume", "plain"])
def test_a_run_folder_without_a_checkpoint_starts_again_from_scratch(
        how: str, tiny_world: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = _stuck_run(tiny_world, tmp_path / "run")
    args = ["train", "--out", str(run), "--sample-cache-dir", str(tiny_world["cache"])]
    args += ["--resume"] if how == "resume" else ["--data", str(tiny_world["data"]), "--preset", "tiny"]
    with caplog.at_level(logging.WARNING):
        assert main(args) == 0
    assert f"{run} holds no checkpoint (the run stopped before its first epoch ended); starting it again " \
           "from scratch" in caplog.text
    want, got = _weights(tiny_world["run"]), _weights(run)  # the same as a run that was never stopped
    assert all(torch.equal(got[k], want[k]) for k in want)
    events = read_metrics(run / "metrics.jsonl")
    assert [e["event"] for e in events].count("start") == 1 and events[-1]["status"] == "finished"


def test_a_run_folder_with_a_checkpoint_is_still_refused_without_resume(
        tiny_world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(tiny_world["data"]), "--preset", "tiny", "--out", str(tiny_world["run"]),
                 "--sample-cache-dir", str(tiny_world["cache"])]) == 2
    assert f"--out {tiny_world['run']}: already holds a run" in capsys.readouterr().err


def _line(event: str, step: int | None = None) -> str:
    return json.dumps({"event": event, **({} if step is None else {"step": step})}) + "\n"


def test_the_log_continues_from_the_checkpoint(tmp_path: Path) -> None:
    """Steps a crash logged after the checkpoint go (they are trained again), so do torn lines; the rest
    stays byte for byte."""
    log = tmp_path / "metrics.jsonl"
    kept = _line("start", 0) + "".join(_line("step", s) for s in range(1, 5)) + _line("epoch", 4)
    log.write_text(kept + _line("step", 5) + _line("step", 6) + '{"event": "step", "st')
    assert repair_for_resume(log, 4)
    assert log.read_text() == kept
    assert not repair_for_resume(log, 4)  # nothing more to do: the file is not rewritten
    # A resumed run's first event lands on a line of its own (before: glued to the torn line, lost).
    log.write_text(kept + '{"event": "step", "st')
    repair_for_resume(log, 4)
    with log.open("a") as f:
        f.write(_line("start", 4))
    assert [e["event"] for e in read_metrics(log)][-1] == "start"


def test_temporary_files_of_a_killed_write_are_removed_at_the_next_start(
        tiny_world: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_world["run"], run)
    ours = [run / "checkpoints" / ".last.pt.k3j_9x2a.tmp", run / ".config.json.abcdefgh.tmp"]
    others = [run / "checkpoints" / ".last.pt.tmp", run / "notes.tmp", run / "checkpoints" / "my.last.pt.abcdefgh.tmp"]
    for path in ours + others:
        path.write_bytes(b"x" * 100)
    assert main(["train", "--out", str(run), "--resume", "--sample-cache-dir", str(tiny_world["cache"])]) == 0
    assert [p.exists() for p in ours] == [False, False] and all(p.exists() for p in others)
    assert remove_stale_temp_files(tmp_path / "missing") == []


def test_the_folder_lock_names_its_holder_and_goes_with_it(tmp_path: Path) -> None:
    lock = FolderLock(tmp_path / "run", subject="--out run", busy="is in use", fix="wait")
    with pytest.raises(FolderBusyError, match=rf"^--out run: is in use \(pid {os.getpid()}\); wait$"):
        FolderLock(tmp_path / "run", subject="--out run", busy="is in use", fix="wait")
    lock.release()
    with FolderLock(tmp_path / "run"):  # released: free again (the lock file stays)
        assert (tmp_path / "run" / ".lock").read_text().strip() == str(os.getpid())


def test_a_file_where_the_folder_should_be_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(UserInputError, match=r"^--out run: cannot be used as a folder \(File exists\); choose"):
        FolderLock(tmp_path / "run", subject="--out run")
