"""A horizontal level meter in dBFS (green, amber near full scale, red when clipping), with the last
clip's peak and RMS written on it and a CLIP mark when the clip was clipped."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0


class LevelMeter(QWidget):
    """Shows the last block's RMS level and a slowly falling peak hold."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level_db = FLOOR_DB
        self.peak_db = FLOOR_DB
        self.clipping = False
        self.text = ""  # "peak -12.3 dBFS, RMS -31.0 dBFS" of the last clip
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Input level (dB full scale)")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(200, 16)

    def set_level(self, db: float, clipping: bool = False) -> None:
        self.clipping = self.clipping or clipping  # held until the next reset: a clip is worth seeing
        self.level_db = max(FLOOR_DB, min(0.0, db))
        # The peak hold falls 1 dB per update so short peaks stay visible.
        self.peak_db = max(self.level_db, self.peak_db - 1.0)
        self.update()

    def reset(self) -> None:
        self.level_db = self.peak_db = FLOOR_DB
        self.clipping, self.text = False, ""
        self.setToolTip("Input level (dB full scale)")
        self.update()

    def show_levels(self, levels: Any) -> None:
        """Show a whole clip's levels (``AudioLevels``): its peak on the bar, peak and RMS in words."""
        self.level_db = max(FLOOR_DB, min(0.0, levels.rms_dbfs))
        self.peak_db = max(FLOOR_DB, min(0.0, levels.peak_dbfs))
        self.clipping = levels.clipped
        self.text = levels.summary()
        self.setToolTip(f"Last clip: {self.text}" + ("; clipped" if levels.clipped else ""))
        self.update()

    @staticmethod
    def fraction(db: float) -> float:
        return (max(FLOOR_DB, min(0.0, db)) - FLOOR_DB) / -FLOOR_DB

    def paintEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, QColor(226, 229, 233))
        level = self.fraction(self.level_db) * w
        colour = QColor(67, 160, 71) if self.level_db < -12 else (
            QColor(251, 140, 0) if self.level_db < -1 else QColor(229, 57, 53))
        p.fillRect(QRectF(0, 0, level, h), colour)
        p.fillRect(QRectF(self.fraction(self.peak_db) * w - 2, 0, 2, h), QColor(40, 40, 40))
        if self.clipping:
            p.fillRect(QRectF(w - 34, 0, 34, h), QColor(229, 57, 53))
            p.setPen(QColor(255, 255, 255))
            p.drawText(QRectF(w - 34, 0, 34, h), Qt.AlignmentFlag.AlignCenter, "CLIP")
        if self.text:
            p.setPen(QColor(30, 30, 30))
            p.drawText(QRectF(4, 0, w - 40, h), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.text)
        p.end()
