"""The best tiles for a sound: thumbnails with similarity and place; a click centres the map."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

from app.services.coords import format_place

THUMB_PX = 112


def pixmap_from_rgb(image: np.ndarray, size: int = THUMB_PX) -> QPixmap:
    """A QPixmap of an (h, w, 3) uint8 image, scaled to ``size`` pixels."""
    image = np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)
    h, w = image.shape[:2]
    qimage = QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(qimage).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation)


class MatchesGallery(QListWidget):
    """Thumbnails of the top tiles of a sound query, best first."""

    tile_clicked = Signal(int)  # tile index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.setGridSize(QSize(THUMB_PX + 26, THUMB_PX + 64))  # rank and score, then latitude and longitude
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.indices: list[int] = []
        self.coord_order = "latlon"  # View > Coordinates
        self.itemClicked.connect(self._clicked)

    def set_matches(self, top: list[Any], thumbnail: Callable[[int], np.ndarray | None]) -> None:
        """Show ``top`` (engine TileMatch: index, id, lon, lat, score) with thumbnails."""
        self.clear()
        self.indices = []
        for rank, m in enumerate(top, start=1):
            try:
                image = thumbnail(int(m.index))
            except Exception:  # a damaged thumbnail leaves a blank icon, not a broken gallery
                image = None
            icon = QIcon(pixmap_from_rgb(image)) if image is not None else QIcon()
            item = QListWidgetItem(icon, f"#{rank}  {m.score:.3f}\n" + format_place(m.lat, m.lon, self.coord_order, 3).replace(", ", "\n"))
            item.setToolTip(f"tile {m.id}\n{format_place(m.lat, m.lon, self.coord_order, 5)}\nsimilarity {m.score:.4f}")
            item.setData(Qt.ItemDataRole.UserRole, int(m.index))
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.addItem(item)
            self.indices.append(int(m.index))

    def _clicked(self, item: QListWidgetItem) -> None:
        self.tile_clicked.emit(int(item.data(Qt.ItemDataRole.UserRole)))
