"""Training end to end on a tiny pair table: the command, its log, exact resume, clean failures."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_checkpoint, load_encoders
from engine.cli import main
from engine.config.run import load_preset
from engine.errors import Cancelled
from engine.progress import Job
from engine.train.loop import train
from engine.train.metrics_log import read_metrics
from tests.conftest import ROOT
from tests.reaping import reaped_popen

STEP_KEYS = {"event", "time", "epoch", "step", "loss", "r1_image_to_audio", "r1_audio_to_image", "lr",
             "samples_per_s", "eta_s"}


@pytest.fixture
def world(tiny_world: dict[str, Path]) -> dict[str, Path]:
    return tiny_world


def _weights(run: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    return {f"{part}.{k}": v for part in ("image_encoder", "audio_encoder") for k, v in payload[part].items()}


def test_tiny_run_writes_config_checkpoints_and_the_log(world: dict[str, Path]) -> None:
    run = world["run"]
    config = json.loads((run / "config.json").read_text())
    assert config["format"] == "soundscape-run" and config["preset"] == "tiny"
    assert config["model"]["image_width"] == 8 and config["train"]["epochs"] == 2
    assert config["dataset"]["pairs"] == {"train": 32, "val": 8, "test": 8}
    assert config["data"]["_view_fraction"] == pytest.approx(0.85) and config["data"]["ground_size_m"] is None
    events = read_metrics(run / "metrics.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 2
    start = events[0]
    assert (start["epochs"], start["steps_per_epoch"], start["total_steps"], start["n_train"], start["n_val"],
            start["batch_size"]) == (2, 4, 8, 32, 8, 8)
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 9)) and all(set(e) == STEP_KEYS for e in steps)
    assert [e["epoch"] for e in steps] == [1] * 4 + [2] * 4
    # Cosine schedule with 2 warm-up steps over 8 steps, logged after each step's scheduler update:
    # step s has lr 1e-3 * 0.5 * (1 + cos(pi * (s - 2) / 6)) once s >= 2; step 1 ends the warm-up at 1e-3.
    for e in steps:
        expected = 1e-3 if e["step"] < 2 else 1e-3 * 0.5 * (1 + math.cos(math.pi * (e["step"] - 2) / 6))
        assert e["lr"] == pytest.approx(expected, rel=1e-9)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]  # it learns
    assert epochs[0]["val"]["gallery"] == 8 and epochs[0]["best"] is True
    assert set(epochs[0]["val"]["image_to_audio"]) >= {"R@1", "R@10", "R@10%", "median_rank"}
    end = events[-1]
    assert end["status"] == "finished" and end["checkpoint"] == str(run / "checkpoints" / "last.pt")
    loaded = load_encoders(run, "last")
    assert loaded.checkpoint["epoch"] == 2 and loaded.checkpoint["step"] == 8
    assert load_encoders(run, "best").checkpoint["epoch"] == max(e["epoch"] for e in epochs if e["best"])


def test_tensorboard_holds_the_logged_losses(world: dict[str, Path]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(world["run"] / "tensorboard"))
    acc.Reload()
    tb = {e.step: e.value for e in acc.Scalars("train/loss")}
    logged = {e["step"]: e["loss"] for e in read_metrics(world["run"] / "metrics.jsonl") if e["event"] == "step"}
    assert tb.keys() == logged.keys()
    for step, value in logged.items():
        assert tb[step] == pytest.approx(value, rel=1e-6)


class CancelAt(Job):
    """Cancels itself when the run reports a given optimiser step (as Ctrl-C would)."""

    def __init__(self, step: int) -> None:
        super().__init__(self._progress)
        self.step = step

    def _progress(self, done: int, total: int | None, message: str) -> None:
        if message.startswith("epoch") and done >= self.step:
            self.cancel()


def test_interrupted_and_resumed_equals_uninterrupted(world: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(Cancelled):
        train(load_preset("tiny"), world["data"], run, job=CancelAt(3), cache_root=world["cache"])
    events = read_metrics(run / "metrics.jsonl")
    assert events[-1]["status"] == "interrupted" and events[-1]["step"] == 3
    assert load_checkpoint(run / "checkpoints" / "last.pt")["progress"]["epoch_step"] == 3  # mid-epoch
    rc = main(["train", "--out", str(run), "--resume", "--sample-cache-dir", str(world["cache"])])
    assert rc == 0
    resumed, uninterrupted = _weights(run), _weights(world["run"])
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-6, atol=1e-7, msg=key)
    events = read_metrics(run / "metrics.jsonl")
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed_from_step"] == 3
    assert [e["step"] for e in events if e["event"] == "step"] == list(range(1, 9))
    assert events[-1]["status"] == "finished"


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(world: dict[str, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import engine.train.loop as loop

    calls = {"n": 0}
    original = loop.PairLoss.forward

    def poisoned(self, image_emb, audio_emb):  # noqa: ANN001, ANN202
        calls["n"] += 1
        loss = original(self, image_emb, audio_emb)
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(loop.PairLoss, "forward", poisoned)
    run = tmp_path / "run"
    rc = main(["train", "--data", str(world["data"]), "--preset", "tiny", "--out", str(run),
               "--sample-cache-dir", str(world["cache"])])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {run}: the loss became nan at epoch 2, step 6;")
    assert "last good checkpoint" in err and "lower the learning rate" in err
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    assert read_metrics(run / "metrics.jsonl")[-1]["status"] == "failed"


def test_a_failed_checkpoint_write_keeps_the_previous_one(world: dict[str, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import engine.checkpoint as checkpoint

    saves = {"n": 0}
    real_save = torch.save

    def disk_full(obj, f):  # noqa: ANN001, ANN202
        saves["n"] += 1
        if saves["n"] == 3:  # epoch 1 writes last and best; epoch 2's last fails half-way
            f.write(b"partial")
            raise OSError(28, "No space left on device")
        real_save(obj, f)

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    run = tmp_path / "run"
    rc = main(["train", "--data", str(world["data"]), "--preset", "tiny", "--out", str(run),
               "--sample-cache-dir", str(world["cache"])])
    assert rc == 2
    err = capsys.readouterr().err
    # One line naming the folder and about the checkpoint's size (its tensors; the file is a little larger).
    size_mb = (run / "checkpoints" / "last.pt").stat().st_size / 1e6
    line = next(ln for ln in err.splitlines() if ln.startswith("error:"))
    assert line.startswith(f"error: {run / 'checkpoints'}: the disk is full (writing last.pt needs about ")
    assert abs(float(line.split("needs about ")[1].split(" MB")[0]) - size_mb) < 0.2 * size_mb
    assert "Traceback" not in err
    end = read_metrics(run / "metrics.jsonl")[-1]  # the app shows the same one line
    assert end["status"] == "failed" and end["message"] == line.removeprefix("error: ")
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--preset", "nope"], "error: --preset nope: no such preset; use one of demo-cpu, field-finetune, paper-r18, paper-r50, tiny"),
    (["--resume"], "error: --resume {run}/checkpoints/last.pt: no checkpoint to resume from;"),
    (["--epochs", "0"], "error: --epochs: must be at least 1, got 0"),
    (["--device", "cuda:7"], "error: --device: cuda:7:"),
])
def test_bad_options_are_one_line_errors(world: dict[str, Path], tmp_path: Path, argv: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    if "cuda" in argv[-1] and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    run = tmp_path / "run"
    rc = main(["train", "--data", str(world["data"]), "--out", str(run), "--sample-cache-dir", str(world["cache"]), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith(message.format(run=run))
    assert not (run / "checkpoints").exists()


def test_existing_run_missing_data_and_empty_train_split(world: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "--data", str(world["data"]), "--preset", "tiny", "--out", str(world["run"])])
    assert rc == 2 and f"--out {world['run']}: already holds a run; pass --resume" in capsys.readouterr().err
    rc = main(["train", "--data", str(tmp_path / "nowhere"), "--preset", "tiny", "--out", str(tmp_path / "r1")])
    assert rc == 2 and f"{tmp_path / 'nowhere'}: not found" in capsys.readouterr().err
    table = world["data"] / "pairs.csv"
    lines = table.read_text().splitlines()
    empty = tmp_path / "no_train.csv"
    empty.write_text("\n".join([lines[0]] + [ln.replace(",train", ",test").replace("images/", f"{world['data']}/images/")
                                             .replace("audio/", f"{world['data']}/audio/") for ln in lines[1:]]))
    rc = main(["train", "--data", str(empty), "--preset", "tiny", "--out", str(tmp_path / "r2"),
               "--sample-cache-dir", str(tmp_path / "cache")])
    assert rc == 2 and f"{empty}: the train split has 0 usable pairs" in capsys.readouterr().err
    end = read_metrics(tmp_path / "r2" / "metrics.jsonl")[-1]  # the app sees why the run ended
    assert end["status"] == "failed" and "the train split has 0 usable pairs" in end["message"]


def test_image_weights_of_another_architecture_are_refused(world: dict[str, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import torchvision

    weights = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    rc = main(["train", "--data", str(world["data"]), "--preset", "tiny", "--out", str(tmp_path / "run"),
               "--sample-cache-dir", str(world["cache"]), "--image-weights", str(weights)])
    assert rc == 2 and f"{weights}: does not match the ImageEncoder backbone" in capsys.readouterr().err


@pytest.mark.slow
def test_sigint_saves_and_exits_cleanly(world: dict[str, Path], tmp_path: Path) -> None:
    """The app cancels a run by sending SIGINT: the run saves 'last', logs 'interrupted', exits 130."""
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = run / "metrics.jsonl"
    with reaped_popen([sys.executable, "-m", "engine.cli", "train", "--data", str(world["data"]), "--preset",
                       "tiny", "--epochs", "200", "--out", str(run), "--sample-cache-dir", str(world["cache"])],
                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and sum(1 for e in read_metrics(log) if e["event"] == "step") >= 3:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "cancelled; work done so far was kept" in err
    end = read_metrics(log)[-1]
    assert end["event"] == "end" and end["status"] == "interrupted"
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert saved["step"] == end["step"] >= 3
