"""The plain-Python state, without Qt."""

from __future__ import annotations

import sys

import pytest

from app.state import AppState, Event, TaskInfo, TasksState, TrainingState


def test_app_state_imports_no_qt() -> None:
    import subprocess

    code = "import sys, app.state; assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_event_calls_listeners_in_order_and_survives_a_broken_one(caplog: pytest.LogCaptureFixture) -> None:
    event = Event("x")
    seen: list[tuple[str, int]] = []
    event.connect(lambda v: seen.append(("a", v)))
    event.connect(lambda v: 1 / 0)
    last = event.connect(lambda v: seen.append(("c", v)))
    event.emit(3)
    assert seen == [("a", 3), ("c", 3)]
    assert "ZeroDivisionError" in caplog.text
    event.disconnect(last)
    event.disconnect(last)  # unknown: ignored
    event.emit(4)
    assert seen[-1] == ("a", 4) and len(event) == 2


def test_training_state_folds_a_metrics_log() -> None:
    state = TrainingState()
    state.reset(None)
    assert state.phase == "starting" and state.running
    records = [
        {"event": "start", "epochs": 2, "steps_per_epoch": 3, "total_steps": 6},
        {"event": "step", "epoch": 1, "step": 1, "loss": 1.0, "r1_image_to_audio": 0.1, "r1_audio_to_image": 0.2,
         "eta_s": 50.0},
        {"event": "step", "epoch": 1, "step": 2, "loss": float("nan"), "eta_s": 40.0},
        {"event": "mystery", "step": 99},
        {"event": "epoch", "epoch": 1, "step": 3, "val": {"image_to_audio": {"R@10": 0.5},
                                                          "audio_to_image": {"R@10": 0.25}}},
        {"event": "step", "epoch": 2, "step": 4, "loss": 0.5, "r1_image_to_audio": 0.3, "r1_audio_to_image": 0.4,
         "future_key": 1},
    ]
    changes = []
    state.changed.connect(lambda: changes.append(state.step))
    for r in records:
        state.apply_event(r)
    c = state.curves
    assert state.phase == "training" and state.epochs == 2 and state.total_steps == 6
    assert c.loss_steps == [1, 4] and c.loss == [1.0, 0.5]  # the NaN loss is not plotted
    assert c.recall_steps == [1, 4] and c.r1_image_to_audio == [0.1, 0.3] and c.r1_audio_to_image == [0.2, 0.4]
    assert c.val_steps == [3] and c.val_r10_image_to_audio == [0.5] and c.val_r10_audio_to_image == [0.25]
    assert state.eta_s == 40.0 and state.epoch == 2 and state.step == 4
    assert len(changes) == 5  # the unknown event changed nothing
    state.apply_event({"event": "end", "status": "interrupted", "message": "stopped by the user"})
    assert state.message == "stopped by the user"
    with pytest.raises(ValueError):
        state.set_phase("dancing")


def test_tasks_state_and_fraction() -> None:
    tasks = TasksState()
    tasks.add(TaskInfo(1, "Building"))
    assert tasks.busy and tasks.tasks[1].fraction is None
    tasks.update(1, 30, 120, "tiles")
    assert tasks.tasks[1].fraction == 0.25 and tasks.tasks[1].message == "tiles"
    tasks.update(1, 130, 120, "")
    assert tasks.tasks[1].fraction == 1.0 and tasks.tasks[1].message == "tiles"
    tasks.update(9, 1, 1, "ignored")
    tasks.remove(1)
    assert not tasks.busy


def test_app_state_messages_and_selection_reset() -> None:
    state = AppState()
    got = []
    state.message.connect(got.append)
    state.tell("error", "x.wav: not audio; convert it")
    assert got[0].level == "error" and state.last_message.text == "x.wav: not audio; convert it"
    state.selection.set_clip("clip", None, 0.0)
    state.selection.set_tile(None)
    assert state.selection.clip is None and state.selection.clip_log_mel is None
