"""The status bar: the model bundle, the atlas and the audio device in use, and background jobs
with their progress and a Cancel button."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from app.state import TasksState


class StatusBar(QStatusBar):
    """Permanent labels on the right, the current background job on the left."""

    cancel_clicked = Signal(int)  # task id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bundle_label = QLabel("model: none")
        self.atlas_label = QLabel("atlas: none")
        self.audio_label = QLabel("audio: …")
        self.task_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setFlat(True)
        self.cancel_button.clicked.connect(self._cancel)
        self.addWidget(self.task_label, 1)
        self.addWidget(self.progress)
        self.addWidget(self.cancel_button)
        for label in (self.bundle_label, self.atlas_label, self.audio_label):
            self.addPermanentWidget(label)
        self._task_id: int | None = None
        self.show_tasks(TasksState())

    def show_tasks(self, tasks: TasksState) -> None:
        shown = [t for t in tasks.tasks.values() if not t.dialog]
        if not shown:
            self._task_id = None
            self.task_label.setText("")
            self.progress.hide()
            self.cancel_button.hide()
            return
        # The oldest job that can be cancelled is the one shown; others are counted.
        task = next((t for t in shown if t.cancellable), shown[0])
        self._task_id = task.task_id
        more = f"  (+{len(shown) - 1} more)" if len(shown) > 1 else ""
        self.task_label.setText(f"{task.name}{': ' + task.message if task.message else ''}{more}")
        fraction = task.fraction
        if fraction is None:
            self.progress.setRange(0, 0)  # busy indicator
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.progress.show()
        self.cancel_button.setVisible(task.cancellable)

    def _cancel(self) -> None:
        if self._task_id is not None:
            self.cancel_clicked.emit(self._task_id)

    def set_model(self, text: str, tooltip: str = "") -> None:
        self.bundle_label.setText(text)
        self.bundle_label.setToolTip(tooltip)

    def set_atlas(self, text: str, tooltip: str = "") -> None:
        self.atlas_label.setText(text)
        self.atlas_label.setToolTip(tooltip)

    def set_audio(self, text: str, tooltip: str = "") -> None:
        self.audio_label.setText(text)
        self.audio_label.setToolTip(tooltip)
