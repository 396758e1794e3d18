"""The worker plumbing: results, errors and progress reach the GUI thread; cancel stops a job."""

from __future__ import annotations

import threading
import time

import pytest

from app.state import TasksState
from app.workers import TaskRunner
from engine.errors import AudioFileError


@pytest.fixture
def runner(qapp):
    r = TaskRunner(TasksState())
    yield r
    r.shutdown()


def test_callbacks_run_on_the_gui_thread_with_result_progress_and_partials(qtbot, runner: TaskRunner) -> None:
    seen: list[tuple[str, object, str]] = []

    def work(job):
        for i in range(1, 4):
            job.report(i, 3, f"step {i}")
            job.publish(i * 10)
            time.sleep(0.06)
        return "done"

    task = runner.submit("work", work, on_success=lambda r: seen.append(("ok", r, threading.current_thread().name)),
                         on_progress=lambda d, t, m: seen.append(("progress", d, threading.current_thread().name)),
                         on_publish=lambda x: seen.append(("publish", x, threading.current_thread().name)))
    assert runner.tasks_state.busy
    assert runner.wait_idle(10)
    assert {name for _, _, name in seen} == {"MainThread"}
    assert [v for k, v, _ in seen if k == "publish"] == [10, 20, 30]
    assert [v for k, v, _ in seen if k == "progress"][-1] == 3
    assert seen[-1][:2] == ("ok", "done") and task.outcome == "ok" and not runner.tasks_state.busy


def test_user_errors_become_one_line_messages_and_bugs_say_what_failed(qtbot, runner: TaskRunner) -> None:
    errors: list[str] = []

    def bad_input(job):
        raise AudioFileError("clip.wav", "file is empty (0 bytes)", "re-copy the recording")

    def bug(job):
        return {}["missing"]

    runner.submit("Reading", bad_input, on_error=errors.append)
    runner.submit("Searching", bug, on_error=errors.append)
    assert runner.wait_idle(10)
    assert sorted(errors) == ["Searching failed: KeyError: 'missing'",
                              "clip.wav: file is empty (0 bytes); re-copy the recording"]


def test_cancel_stops_the_job_at_its_next_check(qtbot, runner: TaskRunner) -> None:
    steps = []
    cancelled = []

    def long(job):
        for i in range(1000):
            job.check()
            steps.append(i)
            time.sleep(0.01)

    task = runner.submit("long", long, on_cancelled=lambda: cancelled.append(True))
    qtbot.waitUntil(lambda: len(steps) >= 3)
    runner.cancel(task.task_id)
    assert runner.wait_idle(10)
    assert cancelled == [True] and task.outcome == "cancelled" and len(steps) < 1000


def test_shutdown_cancels_and_joins(qtbot, qapp) -> None:
    runner = TaskRunner()
    started = threading.Event()

    def forever(job):
        started.set()
        while True:
            job.check()
            time.sleep(0.005)

    task = runner.submit("forever", forever)
    started.wait(5)
    runner.shutdown(timeout_s=5)
    assert not task.thread.is_alive() and not runner.tasks and not runner.tasks_state.busy
