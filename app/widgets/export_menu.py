"""File > Export: the submenu, its save dialogs, and the PNGs rendered with Qt (the map with its colour
bar, "no value" key and scale bar; a spectrogram with its axes), which the export actions write."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRect, Qt
from PySide6.QtGui import QAction, QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from app.controllers.export_actions import KINDS

if TYPE_CHECKING:
    from app.widgets.main_window import MainWindow

TITLE_PX = 26


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def titled_grab(widget: QWidget, title: str) -> QImage:
    """``widget`` as drawn on screen (``QWidget.grab``) under a one-line title."""
    shot = widget.grab().toImage()
    image = QImage(shot.width(), shot.height() + TITLE_PX, QImage.Format.Format_ARGB32)
    image.fill(QColor(255, 255, 255))
    p = QPainter(image)
    font = QFont(widget.font())
    font.setBold(True)
    p.setFont(font)
    p.setPen(QColor(30, 30, 30))
    p.drawText(QRect(8, 0, shot.width() - 16, TITLE_PX), int(Qt.AlignmentFlag.AlignVCenter), title)
    p.drawImage(0, TITLE_PX, shot)
    p.end()
    return image


class ExportMenu:
    """Adds "Export" to a menu and runs the exports of the window's current state."""

    def __init__(self, window: MainWindow, parent_menu: QMenu) -> None:
        self.window = window
        self.menu = parent_menu.addMenu("Export")
        self.actions: dict[str, QAction] = {}
        for kind, (text, _filter, _name) in KINDS.items():
            action = QAction(text, window)
            action.triggered.connect(lambda _=False, k=kind: self.ask(k))
            self.menu.addAction(action)
            self.actions[kind] = action
            if kind in ("map_png", "tile_raven"):
                self.menu.addSeparator()

    def ask(self, kind: str) -> None:
        """Ask where to write, then export."""
        text, file_filter, _ = KINDS[kind]
        start = self.window.controller.exports.default_path(kind)
        path, _ = QFileDialog.getSaveFileName(self.window, text.rstrip("…"), str(start), file_filter)
        if path:
            self.export_to(kind, path)

    def export_to(self, kind: str, path: str | Path) -> Any:
        """Export ``kind`` to ``path`` (PNGs are rendered here first). Returns the background task."""
        png = None
        if kind == "map_png":
            png = png_bytes(self.map_image())
        elif kind == "spectrogram_png":
            view = self.spectrogram_view()
            if view is None:
                self.window.controller.error("No spectrogram is shown; click a recording or search with a sound first")
                return None
            png = png_bytes(titled_grab(view, view.caption.text() or "Spectrogram"))
        return self.window.controller.exports.export(kind, path, png=png)

    def map_image(self) -> QImage:
        """The map as shown, with the layer's colour bar, "no value" key and scale bar."""
        layer = self.window.state.layers.current
        return titled_grab(self.window.map.canvas, f"Soundscape Mapper · {layer.legend_title}")

    def spectrogram_view(self) -> Any:
        """The spectrogram to export: the Listen tab's clip, else the sound query's (None: neither shown)."""
        for view in (self.window.listen.spectrogram, self.window.search.query_view):
            if getattr(view, "data", None) is not None:
                return view
        return None
