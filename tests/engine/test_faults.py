"""Fault injection, as an operator or a scheduler would cause it (issue 12), small enough for CI.

- SIGKILL and SIGTERM at seeded random moments of ``train``, ``atlas build`` and ``atlas reembed`` (real
  CLI processes), then the same command again (``--resume`` for a run): the weights are bit-identical to
  an uninterrupted run's and the atlas files byte-identical to an uninterrupted build's.
- A full disk (a write failing with ENOSPC under torch.save, and under the atlas's appenders): a one-line
  error naming the folder and the bytes, the previous checkpoint intact, and the run or build continues
  to the same result once there is space again.
- Concurrent writers: a second ``train`` on a run folder, or a second build on an atlas, that another
  live process holds fails at once with one line naming the pid; a lock left by a killed process does not
  block.

The tiny preset on a 48-pair table, and the ``tiny`` demo world with hand-made ONNX bundles for atlases.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.cli import main
from engine.train.metrics_log import read_metrics
from tests.conftest import ROOT
from tests.engine.atlas.handmade import comparable_files, make_bundle
from tests.reaping import python_env, reaped_popen

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]

SEED = 12  # the random moments are drawn from this seed, so a failure replays exactly
TRAIN_MOMENTS = 1  # moments per signal in CI; raise it to probe more (each costs a run and a resume)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    return {f"{part}.{k}": v for part in ("image_encoder", "audio_encoder") for k, v in payload[part].items()}


def _assert_same_weights(run: Path, reference: Path) -> None:
    got, want = _weights(run), _weights(reference)
    assert got.keys() == want.keys()
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, f"not bit-identical: {different[:5]}"


def _wait_until(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def _steps_logged(run: Path) -> int:
    log = run / "metrics.jsonl"
    return sum(1 for e in read_metrics(log) if e["event"] == "step") if log.exists() else 0


# ------------------------------------------------------------------------------------------- training
def _train_cmd(world: dict[str, Path], run: Path) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "train", "--data", str(world["data"]), "--preset", "tiny",
            "--out", str(run), "--sample-cache-dir", str(world["cache"])]


def _finish(world: dict[str, Path], run: Path) -> None:
    """Continue a stopped run as a user would: --resume when the run folder holds a run, else start it."""
    if (run / "config.json").exists():
        assert main(["train", "--out", str(run), "--resume", "--sample-cache-dir", str(world["cache"])]) == 0
    else:
        assert main(_train_cmd(world, run)[3:]) == 0


def _assert_clean_log(run: Path, total_steps: int) -> None:
    """The curves never step back: each step logged once, in order (item 8)."""
    steps = [e["step"] for e in read_metrics(run / "metrics.jsonl") if e["event"] == "step"]
    assert steps == list(range(1, total_steps + 1))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_train_stopped_at_a_random_moment_resumes_to_bit_identical_weights(
        sig: signal.Signals, tiny_world: dict[str, Path], tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}-train-{sig.name}")
    for attempt in range(TRAIN_MOMENTS):
        after_steps, extra_s = rng.randint(1, 5), rng.uniform(0.0, 0.2)
        run = tmp_path / f"run{attempt}"
        with reaped_popen(_train_cmd(tiny_world, run), cwd=ROOT, env=python_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
            _wait_until(lambda run=run, n=after_steps: _steps_logged(run) >= n, proc)
            time.sleep(extra_s)
            assert proc.poll() is None, f"the run ended before the fault: {proc.communicate()}"
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=120)
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:  # a clean stop: 'last' saved at the step the end event names, one line, status 130
            assert proc.returncode == 130, err
            assert "Traceback" not in err and "cancelled; work done so far was kept" in err
            end = read_metrics(run / "metrics.jsonl")[-1]
            assert end["event"] == "end" and end["status"] == "interrupted"
            assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == end["step"] >= after_steps
        _finish(tiny_world, run)
        _assert_same_weights(run, tiny_world["run"])
        _assert_clean_log(run, 8)
        assert not list(run.rglob("*.tmp"))


def _failing_fdopen(real_fdopen: Callable, fail_on: Callable[[str], bool]) -> Callable:
    """os.fdopen for the atomic writer whose file's writes fail with ENOSPC when ``fail_on(temp name)``."""

    class FullDisk:
        def __init__(self, file) -> None:  # noqa: ANN001
            self._file = file

        def write(self, data) -> int:  # noqa: ANN001
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self._file, name)

        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *exc: object) -> None:
            self._file.close()

    def fdopen(fd: int, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        file = real_fdopen(fd, *args, **kwargs)
        return FullDisk(file) if fail_on(os.readlink(f"/proc/self/fd/{fd}")) else file

    return fdopen


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name the file being written")
def test_a_full_disk_under_torch_save_is_one_line_and_the_run_resumes(
        tiny_world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """torch.save turns the failed write into 'RuntimeError: [enforce fail at inline_container.cc]';
    the user sees one line naming the folder and the bytes, and the epoch-1 checkpoint survives."""
    import engine.files as files

    writes = {"last": 0}

    def fail_on(name: str) -> bool:
        if "/.last.pt." in name:
            writes["last"] += 1
            return writes["last"] == 2  # epoch 2's checkpoint
        return False

    monkeypatch.setattr(files.os, "fdopen", _failing_fdopen(os.fdopen, fail_on))
    run = tmp_path / "run"
    assert main(_train_cmd(tiny_world, run)[3:]) == 2
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if ln.startswith("error:"))
    assert line.startswith(f"error: {run / 'checkpoints'}: the disk is full (writing last.pt needs about ")
    assert " MB" in line and "free)" in line and "Traceback" not in err and "inline_container" not in err
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    assert not list(run.rglob("*.tmp"))
    end = read_metrics(run / "metrics.jsonl")[-1]
    assert end["status"] == "failed" and end["message"] == line.removeprefix("error: ")
    monkeypatch.undo()  # space again
    _finish(tiny_world, run)
    _assert_same_weights(run, tiny_world["run"])
    _assert_clean_log(run, 8)


def test_a_second_train_on_a_live_run_folder_fails_at_once_naming_the_pid(
        tiny_world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two real processes: a training run in a child, and this process training into the same folder."""
    run = tmp_path / "run"
    with reaped_popen(_train_cmd(tiny_world, run) + ["--epochs", "200"], cwd=ROOT, env=python_env(),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as first:
        _wait_until(lambda: _steps_logged(run) >= 1, first)
        assert first.poll() is None
        for extra in ([], ["--resume"]):
            steps_before = _steps_logged(run)
            assert main(_train_cmd(tiny_world, run)[3:] + extra) == 2
            assert _steps_logged(run) >= steps_before  # the live run's log was not restarted
            assert capsys.readouterr().err.strip().splitlines()[-1] == (
                f"error: --out {run}: is in use by another training run (pid {first.pid}); wait for it to "
                "finish or stop it, or choose another --out folder")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    assert (run / ".lock").exists()  # left behind by the killed process: it must not block
    assert main(["train", "--out", str(run), "--resume", "--epochs", "1", "--sample-cache-dir", str(tiny_world["cache"])]) == 0
    assert read_metrics(run / "metrics.jsonl")[-1]["status"] == "finished"


# --------------------------------------------------------------------------------------------- atlas
@pytest.fixture(scope="module")
def atlas_inputs(demo_world_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two hand-made bundles, the tiny world's mosaic and 16 of its recordings, and the atlas an
    uninterrupted build makes (and, re-embedded with the second bundle, the atlas a re-embedding makes)."""
    root = tmp_path_factory.mktemp("fault_atlas")
    lines = (demo_world_tiny / "pairs.csv").read_text().splitlines()
    header = lines[0].split(",")
    i_img, i_aud = header.index("image"), header.index("audio")
    rows = []
    for line in lines[1:17]:
        cells = line.split(",")
        cells[i_img], cells[i_aud] = str(demo_world_tiny / cells[i_img]), str(demo_world_tiny / cells[i_aud])
        rows.append(",".join(cells))
    table = root / "pairs16.csv"
    table.write_text("\n".join([lines[0], *rows]) + "\n")
    paths = {"b0": make_bundle(root / "b0", seed=0).path, "b1": make_bundle(root / "b1", seed=1).path,
             "mosaic": demo_world_tiny / "mosaic.tif", "table": table, "built": root / "built",
             "reembedded": root / "reembedded"}
    started = time.perf_counter()
    assert main(_build_args(paths, paths["built"])) == 0
    paths["build_s"] = time.perf_counter() - started  # type: ignore[assignment]  # the scale of a random moment
    shutil.copytree(paths["built"], paths["reembedded"])
    started = time.perf_counter()
    assert main(["atlas", "reembed", "--atlas", str(paths["reembedded"]), "--bundle", str(paths["b1"])]) == 0
    paths["reembed_s"] = time.perf_counter() - started  # type: ignore[assignment]
    return paths


def _build_args(inputs: dict[str, Path], out: Path) -> list[str]:
    return ["atlas", "build", "--bundle", str(inputs["b0"]), "--out", str(out), "--imagery", str(inputs["mosaic"]),
            "--tile-px", "32", "--recordings", str(inputs["table"]), "--threads", "1"]


def _atlas_files(atlas: Path) -> dict[str, object]:
    """Every file of an atlas as bytes; atlas.json and the source entries without their clock times
    (created/updated/started/added), the entries as read rather than the log's commit history."""
    return comparable_files(atlas, _without_times)


def _without_times(value):  # noqa: ANN001, ANN202
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not k.endswith("_at")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _lock_holder(folder: Path) -> int | None:
    try:
        text = (folder / ".lock").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stop_atlas_command(args: list[str], sig: signal.Signals, moment_s: float) -> subprocess.Popen:
    """Run ``soundscape-engine ARGS`` and send ``sig`` ``moment_s`` after it took the atlas's lock."""
    with reaped_popen([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=python_env(),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        out = Path(args[args.index("--out" if "--out" in args else "--atlas") + 1])
        _wait_until(lambda: _lock_holder(out) == proc.pid, proc)  # a lock file may be left from before
        time.sleep(moment_s)
        if proc.poll() is None:
            proc.send_signal(sig)
        proc.stdout_text, proc.stderr_text = proc.communicate(timeout=120)  # type: ignore[attr-defined]
    return proc


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_atlas_build_and_reembed_stopped_at_random_moments_end_byte_identical(
        sig: signal.Signals, atlas_inputs: dict[str, Path], tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}-atlas-{sig.name}")
    atlas = tmp_path / "atlas"
    # A moment within the time an uninterrupted build took here (if the command is done by then, the
    # resume below must still leave the same files).
    proc = _stop_atlas_command(_build_args(atlas_inputs, atlas), sig, rng.uniform(0.05, 0.9) * atlas_inputs["build_s"])
    print(f"build: exit status {proc.returncode} after {sig.name}")  # 0: it was done before the signal
    if sig == signal.SIGTERM and proc.returncode != 0:  # stopped (not already done): cleanly, in one line
        assert proc.returncode == 130 and "Traceback" not in proc.stderr_text  # type: ignore[attr-defined]
    assert main(_build_args(atlas_inputs, atlas)) == 0
    assert _atlas_files(atlas) == _atlas_files(atlas_inputs["built"])

    reembed = ["atlas", "reembed", "--atlas", str(atlas), "--bundle", str(atlas_inputs["b1"]), "--threads", "1"]
    proc = _stop_atlas_command(reembed, sig, rng.uniform(0.05, 0.9) * atlas_inputs["reembed_s"])
    print(f"reembed: exit status {proc.returncode} after {sig.name}")
    if sig == signal.SIGTERM and proc.returncode != 0:
        assert proc.returncode == 130 and "Traceback" not in proc.stderr_text  # type: ignore[attr-defined]
    assert main(reembed) == 0
    assert _atlas_files(atlas) == _atlas_files(atlas_inputs["reembedded"])


def test_a_full_disk_stops_an_atlas_build_in_one_line_and_it_resumes(
        atlas_inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import engine.atlas.writer as writer

    class FullAfter:
        """An append-only file on a disk that fills up after ``budget`` bytes (shared by all files)."""

        budget = 60_000

        def __init__(self, file) -> None:  # noqa: ANN001
            self._file = file

        def write(self, data: bytes) -> int:
            if len(data) > FullAfter.budget:
                raise OSError(errno.ENOSPC, "No space left on device")
            FullAfter.budget -= len(data)
            return self._file.write(data)

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self._file, name)

    monkeypatch.setattr(writer, "open", lambda *a, **k: FullAfter(open(*a, **k)), raising=False)
    atlas = tmp_path / "atlas"
    assert main(_build_args(atlas_inputs, atlas)) == 2
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith(f"error: {atlas}") and ": the disk is full (writing " in errors[0]
    assert " needs about " in errors[0]
    monkeypatch.undo()
    assert main(_build_args(atlas_inputs, atlas)) == 0
    assert _atlas_files(atlas) == _atlas_files(atlas_inputs["built"])


def test_a_second_build_on_a_live_atlas_fails_at_once_naming_the_pid(
        atlas_inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The other writer is a real process holding the atlas's lock the way a build does."""
    atlas = tmp_path / "atlas"
    hold = ("import sys, time; from engine.folder_lock import FolderLock; lock = FolderLock(sys.argv[1]); "
            "print('held', flush=True); time.sleep(300)")
    with reaped_popen([sys.executable, "-c", hold, str(atlas)], cwd=ROOT, env=python_env(),
                      stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout.readline().strip() == "held"
        assert main(_build_args(atlas_inputs, atlas)) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"error: {atlas}: is being written by another build (pid {holder.pid}); wait for it to finish "
            "or cancel it")
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert main(_build_args(atlas_inputs, atlas)) == 0  # the dead holder's lock file does not block
    assert _atlas_files(atlas) == _atlas_files(atlas_inputs["built"])
