"""Model > Models…: every model the app knows (shipped, trained, opened) with what it was trained on
and its validation metrics; use one, or go back to the shipped demo model in one click."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("", "Model", "Kind", "Exported", "Trained on", "Validation")


class ModelsDialog(QDialog):
    """The model list; it renders ModelInfo rows and forwards the user's choice."""

    use_requested = Signal(object)  # Path
    demo_requested = Signal()
    open_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(860, 320)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _: self._use())
        self.use_button = QPushButton("Use this model")
        self.use_button.clicked.connect(self._use)
        self.demo_button = QPushButton("Back to the demo model")
        self.demo_button.clicked.connect(self.demo_requested)
        self.open_button = QPushButton("Open bundle…")
        self.open_button.clicked.connect(self.open_requested)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        note = QLabel("Switching re-embeds the open atlas with the chosen model (the demo atlas is copied first).")
        note.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.use_button, self.demo_button, self.open_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(note)
        layout.addLayout(buttons)
        self.paths: list[Path] = []

    def render(self, models: list[Any], current: Path | None) -> None:
        """Fill the table from ModelInfo rows; the model in use is marked ●."""
        self.table.setRowCount(len(models))
        self.paths = [m.path for m in models]
        for row, m in enumerate(models):
            cells = ("●" if current is not None and m.path == current else "", m.name, m.kind, m.date,
                     m.trained_on, m.metrics_text())
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{m.path}\nid {m.bundle_id[:12]}")
                self.table.setItem(row, col, item)
            if current is not None and m.path == current:
                self.table.selectRow(row)
        self.table.resizeColumnsToContents()

    def _use(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.paths):
            self.use_requested.emit(self.paths[row])

    def select(self, path: Path) -> None:
        """Select the row of ``path`` (tests and the window use it)."""
        for row, p in enumerate(self.paths):
            if p == path:
                self.table.selectRow(row)
                self.table.setCurrentCell(row, 1)
                return

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._use()
            return
        super().keyPressEvent(event)
