"""The Train tab's box for a missing engine: what is missing, the command that installs it, its download
size, progress and Cancel. It renders :class:`~app.state.EngineState` and forwards the clicks."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app.services.engine_install import format_bytes
from app.state import EngineState


class EngineBox(QFrame):
    """Hidden while the engine is installed."""

    size_clicked = Signal()  # "Install the engine…": find out what it downloads first
    install_clicked = Signal()
    cancel_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("engineBox")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.reason_label = QLabel()
        self.reason_label.setWordWrap(True)
        self.command_label = QLabel()
        self.command_label.setWordWrap(True)
        self.command_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.command_label.setStyleSheet("font-family: monospace;")
        self.size_label = QLabel()
        self.size_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.line_label = QLabel()  # pip's latest line
        self.line_label.setWordWrap(True)
        self.offer_button = QPushButton("Install the engine…")
        self.offer_button.clicked.connect(self.size_clicked)
        self.install_button = QPushButton("Install")
        self.install_button.setObjectName("primaryButton")
        self.install_button.clicked.connect(self.install_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.offer_button)
        buttons.addWidget(self.install_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        for w in (self.reason_label, self.command_label, self.size_label, self.progress, self.line_label):
            layout.addWidget(w)
        layout.addLayout(buttons)
        self.hide()

    def render(self, state: EngineState) -> None:
        """Draw the phase: the offer, the size with Install/Cancel, the progress, or the outcome."""
        phase = state.phase
        self.setVisible(phase != "available")
        if phase == "available":
            return
        self.reason_label.setText(state.reason)
        self.command_label.setText(f"Command: {state.command}" if state.command else "")
        self.command_label.setVisible(bool(state.command))
        size = {"sizing": "Finding out what to download (pip's dry run)…",
                "ready": f"It downloads {state.download}. Install now?"}.get(phase, "")
        if phase == "installing":
            size = f"Downloading {state.download}" if state.download else "Installing"
        if phase in ("failed", "cancelled"):
            size = state.message
        self.size_label.setText(size)
        self.size_label.setVisible(bool(size))
        self.progress.setVisible(state.busy)
        if phase == "installing" and state.expected_bytes:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(1.0, state.fetched_bytes / state.expected_bytes)))
            self.progress.setFormat(f"{format_bytes(state.fetched_bytes)} of {format_bytes(state.expected_bytes)}")
        elif state.busy:
            self.progress.setRange(0, 0)  # busy, no fraction known
        self.line_label.setText(state.last_line if phase == "installing" else "")
        self.line_label.setVisible(phase == "installing" and bool(state.last_line))
        self.offer_button.setVisible(phase in ("missing", "failed", "cancelled"))
        self.install_button.setVisible(phase == "ready")
        self.cancel_button.setVisible(phase in ("sizing", "ready", "installing"))
