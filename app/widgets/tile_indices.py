"""The clicked tile's predicted soundscape in the Listen tab: each index's predicted value (± its
uncertainty; "no value" for NaN) and, when the matching recordings carry start times, a small 24-hour
profile of the shown index (pyqtgraph). Renders :class:`~app.state.layer_state.TileIndices` only."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.services.layers import label_of
from app.state.layer_state import TileIndices
from app.widgets.layers_control import NO_VALUE_TEXT


def format_value(value: float, uncertainty: float) -> str:
    if not math.isfinite(value):
        return NO_VALUE_TEXT
    text = f"{value:.4g}"
    return text + (f" ± {uncertainty:.2g}" if math.isfinite(uncertainty) else "")


class TileIndicesPanel(QWidget):
    """Predicted indices of the selected tile and its 24-hour profile."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Predicted soundscape")
        self.title.setObjectName("sectionTitle")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["index", "predicted"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(60)
        self.profile_caption = QLabel("")
        self.profile_caption.setWordWrap(True)
        self.plot = pg.PlotWidget(background=QColor(250, 250, 250))
        self.plot.setMinimumHeight(80)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "hour of day")
        self.plot.setXRange(-0.5, 23.5, padding=0)
        self.plot.getAxis("bottom").setTicks([[(h, str(h)) for h in range(0, 24, 3)]])
        self.curve = pg.PlotDataItem(pen=pg.mkPen(40, 90, 160, width=2), symbol="o", symbolSize=6,
                                     symbolBrush=(40, 90, 160), connect="finite")
        self.plot.addItem(self.curve)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.profile_caption)
        layout.addWidget(self.plot, 1)
        self.shown: TileIndices | None = None
        self.profile_values = np.full(24, np.nan)
        self.render(None)

    def render(self, tile: TileIndices | None) -> None:
        self.shown = tile
        if tile is None:
            self.hide()
            return
        self.show()
        self.title.setText(f"Predicted soundscape of tile {tile.tile_id}")
        self.table.setRowCount(len(tile.values))
        for row, (name, (value, unc)) in enumerate(tile.values.items()):
            item = QTableWidgetItem(label_of(name))
            item.setToolTip(tile.units.get(name, ""))
            self.table.setItem(row, 0, item)
            cell = QTableWidgetItem(format_value(value, unc))
            cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if not math.isfinite(value):
                cell.setForeground(QColor(120, 120, 120))
            self.table.setItem(row, 1, cell)
        self.profile_values = np.asarray(tile.profile, np.float64)
        if tile.has_times:
            n = int(np.asarray(tile.profile_counts).sum())
            self.profile_caption.setText(f"24-hour profile of {label_of(tile.profile_name)} from the {n} best-matching "
                                         "recordings with a start time (gaps: no recording then)")
            self.plot.setLabel("left", label_of(tile.profile_name))
            self.curve.setData(np.arange(24, dtype=float), self.profile_values)
            self.plot.show()
        else:
            self.profile_caption.setText("No 24-hour profile: the matching recordings carry no start times")
            self.curve.setData([], [])
            self.plot.hide()

    def value_text(self, name: str) -> str:
        """The shown text of index ``name`` (for tests and accessibility)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == label_of(name):
                return self.table.item(row, 1).text()
        raise KeyError(name)
