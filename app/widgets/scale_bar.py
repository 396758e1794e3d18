"""The map's scale bar: a round ground length (1, 2 or 5 x 10^k m) drawn over its lower-left corner."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QWidget

from app.services.geo import format_length, nice_length


class ScaleBar(QWidget):
    """A bar of a round ground length (1, 2 or 5 x 10^k m) drawn over the map's lower-left corner."""

    MAX_PX = 140

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.length_m = 0.0
        self.bar_px = 0.0
        self.resize(self.MAX_PX + 90, 34)

    def set_scale(self, metres_per_px: float) -> None:
        """Choose the bar for a ground resolution (metres per screen pixel)."""
        if not metres_per_px > 0 or not math.isfinite(metres_per_px):
            self.length_m, self.bar_px = 0.0, 0.0
        else:
            self.length_m = nice_length(self.MAX_PX * metres_per_px)
            self.bar_px = self.length_m / metres_per_px
        self.update()

    @property
    def label(self) -> str:
        return format_length(self.length_m) if self.length_m else ""

    def paintEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        if not self.bar_px:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        x0, y = 10, self.height() - 10
        x1 = x0 + int(round(self.bar_px))
        p.fillRect(QRectF(x0 - 4, y - 20, x1 - x0 + 8 + 70, 26), QColor(255, 255, 255, 190))
        pen = QPen(QColor(30, 30, 30), 2)
        p.setPen(pen)
        p.drawLine(x0, y, x1, y)
        p.drawLine(x0, y - 6, x0, y)
        p.drawLine(x1, y - 6, x1, y)
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF() * 0.95))
        p.setFont(font)
        p.drawText(x1 + 6, y + 1, self.label)
        p.end()
