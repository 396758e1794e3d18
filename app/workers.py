"""The one place that owns worker threads.

Compute functions take an :class:`engine.progress.Job` (``report`` / ``check``) and know nothing of
Qt. :class:`TaskRunner` runs each on a Python thread and hands progress, partial results and the
outcome back to the GUI thread through queued Qt signals, so callbacks given to :meth:`submit`
always run on the GUI thread. Cancel sets the job's flag; the function stops at its next ``check()``
and keeps what it built.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Signal, Slot

from app.state import TaskInfo, TasksState
from engine.errors import Cancelled, UserInputError
from engine.progress import Job

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05  # at most 20 progress updates a second reach the GUI


class _Relay(QObject):
    """Lives on the GUI thread; its signals are emitted on the worker thread and so are queued."""

    progress = Signal(int, object, str)
    published = Signal(object)
    finished = Signal(str, object)  # outcome ("ok", "error", "cancelled"), payload


class QtJob(Job):
    """A Job whose progress goes to the GUI thread (throttled) and which can publish partial results."""

    def __init__(self, relay: _Relay) -> None:
        super().__init__(self._forward)
        self._relay = relay
        self._last = 0.0

    def _forward(self, done: int, total: int | None, message: str) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_S or (total is not None and done >= total):
            self._last = now
            self._relay.progress.emit(int(done), total, message)

    def publish(self, item: Any) -> None:
        """Hand a partial result (e.g. a training metrics record) to the GUI thread."""
        self._relay.published.emit(item)


Callback = Callable[..., Any] | None


class Task(QObject):
    """One background computation. Its callbacks run on the GUI thread."""

    def __init__(self, task_id: int, name: str, fn: Callable[[QtJob], Any], runner: TaskRunner,
                 on_success: Callback, on_error: Callback, on_cancelled: Callback,
                 on_progress: Callback, on_publish: Callback) -> None:
        super().__init__()
        self.task_id, self.name = task_id, name
        self._relay = _Relay(self)
        self.job = QtJob(self._relay)
        self._fn = fn
        self._runner = runner
        self._callbacks = {"ok": on_success, "error": on_error, "cancelled": on_cancelled}
        self._on_progress, self._on_publish = on_progress, on_publish
        self._relay.progress.connect(self._progress)
        self._relay.published.connect(self._published)
        self._relay.finished.connect(self._finished)
        self.outcome: str | None = None
        self.result: Any = None
        self.thread = threading.Thread(target=self._run, name=f"task-{task_id}-{name}", daemon=True)

    def cancel(self) -> None:
        """Ask the computation to stop at its next ``check()``."""
        self.job.cancel()

    @property
    def running(self) -> bool:
        return self.outcome is None

    def _run(self) -> None:
        try:
            result = self._fn(self.job)
        except Cancelled:
            self._relay.finished.emit("cancelled", None)
        except UserInputError as err:
            self._relay.finished.emit("error", str(err))
        except MemoryError:
            self._relay.finished.emit("error", f"{self.name}: out of memory; close other programs or "
                                               "use a smaller input")
        except Exception as err:  # a bug or an unexpected failure: log the traceback, tell the user
            log.exception("background task %r failed", self.name)
            self._relay.finished.emit("error", f"{self.name} failed: {type(err).__name__}: {err}")
        else:
            self._relay.finished.emit("ok", result)

    @Slot(int, object, str)
    def _progress(self, done: int, total: Any, message: str) -> None:
        self._runner.tasks_state.update(self.task_id, done, total, message)
        if self._on_progress is not None:
            self._on_progress(done, total, message)

    @Slot(object)
    def _published(self, item: Any) -> None:
        if self._on_publish is not None:
            self._on_publish(item)

    @Slot(str, object)
    def _finished(self, outcome: str, payload: Any) -> None:
        self.thread.join(timeout=10.0)  # it has emitted its last signal; this returns at once
        self.outcome, self.result = outcome, payload
        self._runner._forget(self)
        callback = self._callbacks[outcome]
        if callback is not None and outcome == "cancelled":
            callback()
        elif callback is not None:
            callback(payload)
        elif outcome == "error":
            log.warning("%s", payload)


class TaskRunner(QObject):
    """Starts tasks, tracks them in :class:`TasksState`, and stops them all on shutdown."""

    all_done = Signal()

    def __init__(self, tasks_state: TasksState | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tasks_state = tasks_state if tasks_state is not None else TasksState()
        self._tasks: dict[int, Task] = {}
        self._finished: deque[Task] = deque(maxlen=16)
        self._ids = itertools.count(1)

    def submit(self, name: str, fn: Callable[[QtJob], Any], *, on_success: Callback = None,
               on_error: Callback = None, on_cancelled: Callback = None, on_progress: Callback = None,
               on_publish: Callback = None, cancellable: bool = True, dialog: bool = False) -> Task:
        """Run ``fn(job)`` on a worker thread.

        Args:
            name: what the status bar shows ("Building the atlas").
            fn: the computation; it gets a :class:`QtJob` and returns the result.
            on_success: ``f(result)`` on the GUI thread.
            on_error: ``f(message)`` with a one-line message for the user.
            on_cancelled: ``f()`` after a cancel took effect.
            on_progress: ``f(done, total, message)``.
            on_publish: ``f(item)`` for each ``job.publish(item)``.
            cancellable: whether the status bar offers Cancel.
            dialog: show it in a progress dialog rather than the status bar.

        Returns:
            The :class:`Task` (``cancel()``, ``outcome``, ``result``).
        """
        task_id = next(self._ids)
        task = Task(task_id, name, fn, self, on_success, on_error, on_cancelled, on_progress, on_publish)
        self._tasks[task_id] = task
        self.tasks_state.add(TaskInfo(task_id, name, cancellable=cancellable, dialog=dialog))
        task.thread.start()
        return task

    def _forget(self, task: Task) -> None:
        self._tasks.pop(task.task_id, None)
        # Keep a reference a little longer: the task is inside its own slot right now, and freeing a
        # QObject during its slot is unsafe. Older finished tasks are freed as new ones finish.
        self._finished.append(task)
        self.tasks_state.remove(task.task_id)
        if not self._tasks:
            self.all_done.emit()

    @property
    def tasks(self) -> list[Task]:
        return list(self._tasks.values())

    def cancel(self, task_id: int) -> None:
        task = self._tasks.get(task_id)
        if task is not None:
            task.cancel()

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Run the event loop until no task is left (for headless rendering and tests).

        Returns:
            True if all tasks finished (including the ones they started) within the timeout.
        """
        deadline = time.monotonic() + timeout_s
        app = QCoreApplication.instance()
        while self._tasks and time.monotonic() < deadline:
            if app is not None:
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        return not self._tasks

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Cancel every task and wait for the threads (called when the window closes)."""
        for task in list(self._tasks.values()):
            task.cancel()
        deadline = time.monotonic() + timeout_s
        for task in list(self._tasks.values()):
            task.thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if task.thread.is_alive():
                log.warning("background task %r did not stop within %.0f s", task.name, timeout_s)
        # Deliver their final signals so the state is consistent, then drop what is left.
        app = QCoreApplication.instance()
        if app is not None:
            app.processEvents()
        for task in list(self._tasks.values()):
            self._tasks.pop(task.task_id, None)
            self.tasks_state.remove(task.task_id)
