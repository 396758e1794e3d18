"""After training: the new model beside the current one, with their validation metrics, and the choice."""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


def _row(label: str, info: Any) -> str:
    if info is None:
        return f"<tr><td><b>{label}</b></td><td colspan=3>none</td></tr>"
    return (f"<tr><td><b>{label}</b></td><td>{escape(info.name)}</td><td>{escape(info.trained_on)}</td>"
            f"<td>{escape(info.metrics_text())}</td></tr>")


class ModelOfferBox(QFrame):
    """'Use it?' for a trained model; hidden when nothing is offered."""

    accepted = Signal()
    declined = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelOffer")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel("<b>A new model is ready. Use it?</b>")
        self.table = QLabel("")
        self.table.setWordWrap(True)
        self.note = QLabel("Using it re-embeds the open atlas with the new model (a new generation; the demo "
                           "atlas is copied first). The current model stays until then.")
        self.note.setWordWrap(True)
        self.use_button = QPushButton("Use it")
        self.use_button.setObjectName("primaryButton")
        self.keep_button = QPushButton("Keep the current model")
        self.use_button.clicked.connect(self.accepted)
        self.keep_button.clicked.connect(self.declined)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.keep_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.table)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        self.hide()

    def render(self, offer: tuple[Any, Any] | None) -> None:
        """Show ``(new, current)`` ModelInfo, or hide."""
        if offer is None:
            self.hide()
            return
        new, current = offer
        self.table.setText("<table cellspacing=4>" + _row("New", new) + _row("Current", current) + "</table>")
        self.show()
