"""train --shards: the shard pipeline's training loop, run on CPU: log, checkpoints, exact resume,
and two processes under torchrun (gloo) where only rank 0 writes."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_checkpoint, load_encoders, read_run_config
from engine.cli import main
from engine.config.run import load_preset
from engine.errors import Cancelled
from engine.progress import Job
from engine.shard_training.train_loop import train_from_shards
from engine.train.metrics_log import read_metrics
from tests.conftest import ROOT
from tests.engine.shards_fixture import make_soundingearth
from tests.reaping import python_env, reaped_popen, run_reaped

TRAIN = ["--preset", "tiny", "--device", "cpu", "--workers", "0", "--batch-size", "4"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train_cache")
    data = make_soundingearth(root / "se", rows=24)
    out = root / "cache"
    assert main(["prepare", "--data", str(data), "--out", str(out), "--preset", "tiny", "--shard-size", "4",
                 "--workers", "1"]) == 0
    return out


def _train(cache: Path, run: Path, *extra: str) -> int:
    return main(["train", "--shards", str(cache), "--out", str(run), *TRAIN, *extra])


def test_train_from_cache_logs_validates_and_checkpoints(cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _train(cache, run, "--epochs", "2") == 0
    events = read_metrics(run / "metrics.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 2
    start = events[0]
    assert start["steps_per_epoch"] == 3 and start["n_train"] == 15 and start["world_size"] == 1  # 15 // 4
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4, 5, 6]  # tiny logs every step
    assert all(e["loss"] > 0 and 0 <= e["r1_image_to_audio"] <= 1 and e["samples_per_s"] > 0 for e in steps)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert epochs[0]["val"]["gallery"] == 2 and epochs[0]["val"]["protocol"] == "paper"
    assert events[-1]["status"] == "finished" and events[-1]["step"] == 6
    config = read_run_config(run)
    assert config["dataset"]["cache"] == str(cache.resolve())
    # The dataset as the CPU loop records it (what export's trained_on and validation check read).
    data = cache.parent / "se"
    assert {k: config["dataset"][k] for k in ("path", "layout", "kind", "split_rule")} == {
        "path": str(data.resolve()), "layout": "soundingearth", "kind": "soundingearth", "split_rule": "paper"}
    assert config["dataset"]["audio_source"] in ("spectrogram", "raw")
    # SoundingEarth images cover about 204.8 m; the encoder's view is the preset's view fraction of that.
    assert config["data"]["ground_size_m"] == pytest.approx(204.8 * load_preset("tiny").view_fraction, abs=1e-3)
    loaded = load_encoders(run, "best")
    assert loaded.checkpoint["epoch"] in (1, 2)


def test_train_from_cache_writes_epoch_scalars_and_log_lines_like_the_cpu_loop(
        cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="engine.shard_training.train_loop"):
        assert _train(cache, run, "--epochs", "2") == 0
    epochs = [e for e in read_metrics(run / "metrics.jsonl") if e["event"] == "epoch"]
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert {e.step: e.value for e in acc.Scalars("epoch/train_loss")} == pytest.approx(
        {e["step"]: e["train_loss"] for e in epochs}, rel=1e-6)
    assert {e.step: e.value for e in acc.Scalars("val/audio_to_image/mean_rank")} == pytest.approx(
        {e["step"]: e["val"]["audio_to_image"]["mean_rank"] for e in epochs}, rel=1e-6)
    lines = [r.getMessage() for r in caplog.records if r.name == "engine.shard_training.train_loop" and "train loss" in r.getMessage()]
    expected = []
    for e in epochs:
        i2a, a2i = e["val"]["image_to_audio"], e["val"]["audio_to_image"]
        expected.append(f"epoch {e['epoch']}: train loss {e['train_loss']:.4f}; val (2 pairs) median rank "
                        f"{i2a['median_rank']:.1f} / {a2i['median_rank']:.1f}, R@10 {i2a['R@10']:.3f} / "
                        f"{a2i['R@10']:.3f}{' (best)' if e['best'] else ''}")
    assert lines == expected


def test_interrupted_run_resumes_exactly(cache: Path, tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert _train(cache, straight, "--epochs", "2") == 0
    cfg = load_preset("tiny").replace("train", batch_size=4, device="cpu", epochs=2).replace("data", num_workers=0)
    job = Job(lambda done, total, message: job.cancel() if done >= 4 else None)
    with pytest.raises(Cancelled):
        train_from_shards(cfg, cache, resumed, job=job)
    stopped = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert stopped["step"] == 5 and stopped["progress"]["epoch_step"] == 2  # mid-epoch 2
    # The cache is taken from the run's config on --resume.
    assert main(["train", "--out", str(resumed), "--resume", "--device", "cpu"]) == 0
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6
    for part in ("image_encoder", "audio_encoder"):
        for name, value in a[part].items():
            torch.testing.assert_close(b[part][name], value, rtol=1e-5, atol=1e-6, msg=name)
    events = read_metrics(resumed / "metrics.jsonl")
    assert [e["status"] for e in events if e["event"] == "end"] == ["interrupted", "finished"]
    assert [e["resumed_from_step"] for e in events if e["event"] == "start"] == [None, 5]


@pytest.mark.parametrize("bad_step", [2, 4])
def test_a_nan_loss_stops_the_cache_loop_and_names_the_kept_checkpoint(
        bad_step: int, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import engine.shard_training.train_loop as train_loop

    real, calls = train_loop.PairLoss.forward, itertools.count(1)  # the loss diverges at step bad_step
    monkeypatch.setattr(train_loop.PairLoss, "forward", lambda self, image_emb, audio_emb: real(
        self, image_emb, audio_emb) * (float("nan") if next(calls) == bad_step else 1.0))
    run = tmp_path / "run"
    assert _train(cache, run, "--epochs", "2") == 2
    # 3 steps an epoch, read every step (tiny logs every step): a bad step is caught right after it ran.
    last = run / "checkpoints" / "last.pt"
    kept = f"the last good checkpoint {last} (epoch 1) is kept" if bad_step > 3 else "no checkpoint was written yet"
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {run}: the loss became nan near step {bad_step}; training stopped and {kept};")
    assert (load_checkpoint(last)["epoch"] if last.exists() else 0) == (bad_step - 1) // 3
    assert read_metrics(run / "metrics.jsonl")[-1]["status"] == "failed"


def test_bad_cache_options(cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--shards", str(tmp_path), "--out", str(tmp_path / "r1"), *TRAIN]) == 2
    assert "is not a folder of prepared shards" in capsys.readouterr().err
    assert main(["train", "--shards", str(cache), "--out", str(tmp_path / "r2"), "--preset", "paper-r18",
                 "--device", "cpu"]) == 2
    assert "prepare again with --image-region 0.75" in capsys.readouterr().err
    assert main(["train", "--data", str(cache), "--out", str(tmp_path / "r3"), "--compile", *TRAIN]) == 2
    assert "add --shards SHARDS" in capsys.readouterr().err


def _torchrun(cache: Path, run: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The two-process job (gloo), reaped: its own session, the group killed on timeout, and a failure
    if any process of it (a rank that outlived torchrun) is still alive after torchrun exited."""
    env = python_env(OMP_NUM_THREADS="1")
    return run_reaped([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                       "-m", "engine.cli", "train", "--shards", str(cache), "--out", str(run), "--epochs", "1", *TRAIN],
                      timeout, cwd=ROOT, env=env, check_orphans=True)


@pytest.mark.slow
def test_torchrun_two_processes_share_the_batch_and_rank0_writes(cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = _torchrun(cache, run)
    assert result.returncode == 0, result.stderr[-3000:]
    events = read_metrics(run / "metrics.jsonl")
    assert [e["event"] for e in events].count("start") == 1  # one writer
    assert events[0]["world_size"] == 2 and events[0]["batch_size"] == 4
    # 15 train pairs in shards of 4, 4, 4, 3; global batch 4 = 2 ranks x 2: each rank reads its own two
    # shards (8 and 7 pairs), so both take 7 // 2 = 3 steps.
    assert events[0]["steps_per_epoch"] == 3 and events[-1]["status"] == "finished" and events[-1]["step"] == 3
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3


TORCHRUN_REPEATS = 3


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_torchrun_ranks_always_exit_under_cpu_load(cache: Path, tmp_path: Path) -> None:
    """Issue 12: a rank deadlocked at exit (the process group destroyed while DDP's reducer held it)
    and outlived torchrun. Repeated under CPU load (busy loops on every core, started and killed here),
    every run must end within its own timeout with no process of its group left."""
    busy = [reaped_popen([sys.executable, "-c", "while True: pass"]) for _ in range(min(2, os.cpu_count() or 1))]
    with contextlib.ExitStack() as stack:
        for loop in busy:
            stack.enter_context(loop)
        for attempt in range(TORCHRUN_REPEATS):
            run = tmp_path / f"run{attempt}"
            result = _torchrun(cache, run, timeout=240)  # raises on timeout or on an orphaned rank
            assert result.returncode == 0, result.stderr[-3000:]
            assert read_metrics(run / "metrics.jsonl")[-1]["status"] == "finished"


def test_sigterm_stops_the_cache_loop_cleanly_and_resume_matches(cache: Path, tmp_path: Path) -> None:
    """SIGTERM (a scheduler's stop) is handled like Ctrl-C on the cache path too: 'last' saved, the log
    ends 'interrupted', and --resume gives the weights of an uninterrupted run."""
    import signal

    from engine.stop_signals import stop_on_signals

    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert _train(cache, straight, "--epochs", "2") == 0
    cfg = load_preset("tiny").replace("train", batch_size=4, device="cpu", epochs=2).replace("data", num_workers=0)
    job = Job(lambda done, total, message: os.kill(os.getpid(), signal.SIGTERM) if done == 4 else None)
    with stop_on_signals(job), pytest.raises(Cancelled):
        train_from_shards(cfg, cache, stopped, job=job)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back
    end = read_metrics(stopped / "metrics.jsonl")[-1]
    assert end["status"] == "interrupted" and load_checkpoint(stopped / "checkpoints" / "last.pt")["step"] == end["step"]
    assert main(["train", "--out", str(stopped), "--resume", "--device", "cpu"]) == 0
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(stopped / "checkpoints" / "last.pt")
    for part in ("image_encoder", "audio_encoder"):
        for name, value in a[part].items():
            torch.testing.assert_close(b[part][name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_a_second_stop_signal_aborts_at_once() -> None:
    import signal

    from engine.stop_signals import stop_on_signals

    job = Job()
    with stop_on_signals(job):
        os.kill(os.getpid(), signal.SIGTERM)
        assert job.cancelled
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
