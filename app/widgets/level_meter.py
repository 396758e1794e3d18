"""A horizontal level meter in dBFS (green, amber near full scale, red when clipping)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0


class LevelMeter(QWidget):
    """Shows the last block's RMS level and a slowly falling peak hold."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level_db = FLOOR_DB
        self.peak_db = FLOOR_DB
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Input level (dB full scale)")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(200, 14)

    def set_level(self, db: float) -> None:
        self.level_db = max(FLOOR_DB, min(0.0, db))
        # The peak hold falls 1 dB per update so short peaks stay visible.
        self.peak_db = max(self.level_db, self.peak_db - 1.0)
        self.update()

    def reset(self) -> None:
        self.level_db = self.peak_db = FLOOR_DB
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
        p.end()
