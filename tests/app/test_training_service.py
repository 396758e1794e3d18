"""The training job's process handling, with a stand-in engine script that behaves like ``train``:
it writes metrics.jsonl line by line and on SIGTERM (the app's cancel; SIGINT too) writes its "end"
record and exits 130. The real
engine runs in test_training_panel.py (slow)."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from app.services.training import TrainingSpec, run_process, run_training
from engine.errors import Cancelled, TrainingError
from engine.progress import Job

FAKE_TRAIN = textwrap.dedent("""
    import json, signal, sys, time
    from pathlib import Path
    out = Path(sys.argv[sys.argv.index('--out') + 1])
    mode = sys.argv[sys.argv.index('--preset') + 1]
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / 'metrics.jsonl', 'a', buffering=1)
    stop = []
    signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    log.write(json.dumps({"event": "start", "epochs": 1, "total_steps": 50}) + "\\n")
    if mode == 'broken':
        print('error: data: no pairs found; check the folder', file=sys.stderr)
        sys.exit(2)
    for step in range(1, 51):
        if stop:
            (out / 'checkpoints').mkdir(exist_ok=True)
            (out / 'checkpoints' / 'last.pt').write_bytes(b'saved')
            log.write(json.dumps({"event": "end", "status": "interrupted", "message": "stopped by " + signal.Signals(stop[0]).name}) + "\\n")
            sys.exit(130)
        log.write(json.dumps({"event": "step", "step": step, "loss": 1.0 / step}))
        log.write("\\n")
        time.sleep(0.05 if mode == 'slow' else 0.001)
    log.write(json.dumps({"event": "end", "status": "finished"}) + "\\n")
""")


@pytest.fixture
def fake_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)
    import app.services.training as training

    monkeypatch.setattr(training, "train_command", lambda spec: [sys.executable, str(script), "--out",
                                                                 str(spec.run_dir), "--preset", spec.preset])
    monkeypatch.setattr(training, "export_command", lambda spec: [sys.executable, "-c",
                                                                  f"import os; os.makedirs({str(spec.bundle_dir)!r})"])
    return script


def spec(tmp_path: Path, preset: str) -> TrainingSpec:
    return TrainingSpec(data=tmp_path, preset=preset, epochs=1, run_dir=tmp_path / "run",
                        bundle_dir=tmp_path / "bundle")


def test_events_are_forwarded_then_the_run_is_exported(tmp_path: Path, fake_engine: Path) -> None:
    events: list[dict] = []
    bundle = run_training(spec(tmp_path, "fast"), Job(), events.append)
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 51))
    assert events[0]["event"] == "start" and {"event": "app_phase", "phase": "exporting"} in events
    assert bundle == tmp_path / "bundle" and bundle.is_dir()


def test_cancel_sends_sigterm_and_the_checkpoint_is_kept(tmp_path: Path, fake_engine: Path) -> None:
    job = Job()
    events: list[dict] = []

    def on_event(e: dict) -> None:
        events.append(e)
        if e.get("step") == 3:
            job.cancel()

    with pytest.raises(Cancelled):
        run_training(spec(tmp_path, "slow"), job, on_event)
    assert events[-1] == {"event": "end", "status": "interrupted", "message": "stopped by SIGTERM"}
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == b"saved"
    assert not (tmp_path / "bundle").exists()  # no export after a cancel


def test_a_failed_run_reports_the_engines_error_line(tmp_path: Path, fake_engine: Path) -> None:
    with pytest.raises(TrainingError) as info:
        run_training(spec(tmp_path, "broken"), Job(), lambda e: None)
    assert "training failed (exit status 2): data: no pairs found; check the folder" in str(info.value)
    assert str(tmp_path / "run" / "app-train.log") in str(info.value)


def test_cancel_interrupts_a_plain_child_process_promptly(tmp_path: Path) -> None:
    job = Job()
    timer = threading.Timer(0.3, job.cancel)
    timer.start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        run_process([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "log.txt", job)
    timer.join()
    assert time.monotonic() - start < 10  # SIGTERM ended it at once, no kill after the grace
