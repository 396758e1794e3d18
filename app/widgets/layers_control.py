"""The map's "Layers" control (a chooser above the map, with a note when the atlas has no index layers)
and the "no value" key drawn over the map beside the colour bar. They render the layer state only."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.state.layer_state import LayerChoice, MapLayer

# "No value" tiles: a neutral grey that no colour map here (viridis) contains, hatched in the key.
NO_VALUE_RGBA = (150, 150, 150, 150)
NO_VALUE_TEXT = "no value"


class LayerControl(QWidget):
    """"Layer: [Imagery ▾]" and, when index layers are missing, why and how to add them.

    Signals:
        chosen(key): the user picked a layer.
    """

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setMinimumContentsLength(22)
        self.combo.setToolTip("What the map shows over the imagery")
        self.note = QLabel()
        self.note.setObjectName("layerNote")
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Layer:"))
        row.addWidget(self.combo)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.note)
        self._rendering = False
        self.combo.activated.connect(self._activated)

    def render_choices(self, choices: list[LayerChoice], note: str) -> None:
        self._rendering = True
        current = self.combo.currentData()
        self.combo.clear()
        for c in choices:
            self.combo.addItem(c.label, c.key)
            i = self.combo.count() - 1
            tip = c.unit if c.available else c.reason
            self.combo.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
            if not c.available:  # shown, but greyed out: the user sees the layer exists and why it is off
                self.combo.model().item(i).setEnabled(False)
        if current is not None and self.combo.findData(current) >= 0:
            self.combo.setCurrentIndex(self.combo.findData(current))
        self._rendering = False
        self.note.setText(note)
        self.note.setVisible(bool(note))

    def render_current(self, layer: MapLayer) -> None:
        i = self.combo.findData(layer.key)
        if i >= 0 and i != self.combo.currentIndex():
            self._rendering = True
            self.combo.setCurrentIndex(i)
            self._rendering = False

    def keys(self) -> list[str]:
        return [self.combo.itemData(i) for i in range(self.combo.count())]

    def _activated(self, index: int) -> None:
        if not self._rendering:
            self.chosen.emit(self.combo.itemData(index))


class NoValueKey(QWidget):
    """A hatched grey swatch, "no value (n tiles)", over the map's top-right corner below the colour
    bar's title; hidden for layers without missing values and for the imagery."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.count = 0
        self.text = ""
        self.resize(190, 24)
        self.hide()

    def render_layer(self, layer: MapLayer) -> None:
        self.count = layer.no_value if layer.values is not None else 0
        self.text = f"{NO_VALUE_TEXT} ({self.count:,} tile{'s' if self.count != 1 else ''})"
        self.setVisible(layer.values is not None and self.count > 0)
        self.update()

    def paintEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        p.fillRect(QRectF(0, 0, self.width(), self.height()), QColor(255, 255, 255, 200))
        swatch = QRectF(6, 5, 22, 14)
        p.fillRect(swatch, QColor(*NO_VALUE_RGBA[:3]))
        p.fillRect(swatch, QBrush(QColor(60, 60, 60), Qt.BrushStyle.BDiagPattern))
        p.setPen(QPen(QColor(40, 40, 40), 1))
        p.drawRect(swatch)
        p.drawText(QRectF(34, 0, self.width() - 36, self.height()),
                   int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), self.text)
        p.end()
