"""A tile's predicted soundscape: its best-matching recordings (similarity) and its nearest ones (km),
each row with a play/stop button and the recording's site and local time, an hour-of-day filter, and the
selected clip's spectrogram."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services.coords import format_place
from app.state import TileSelection
from app.widgets.spectrogram_view import SpectrogramView

PLAY, STOP = "▶", "■"


def when_text(match: Any) -> str:
    """A recording's site and local start, e.g. ``site-03 · 2024-06-15 07:16``; "" when it has no time."""
    local = getattr(match, "start_local", None)
    site = getattr(match, "site", None) or ""
    if not local:
        return site
    stamp = str(local)[:16].replace("T", " ")
    return f"{site} · {stamp}" if site else stamp


class RecordingTable(QTableWidget):
    """Rows of recordings: play button, title, and a value column (similarity or km)."""

    play_clicked = Signal(object)  # the RecordingMatch
    row_chosen = Signal(object)

    def __init__(self, value_header: str, parent: QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.value_header = value_header
        self.setHorizontalHeaderLabels(["", "recording", value_header, "site · local time"])
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().hide()
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.matches: list[Any] = []
        self.buttons: list[QToolButton] = []
        self._play_enabled, self._play_reason = True, ""
        self.itemSelectionChanged.connect(self._selection_changed)

    def set_matches(self, matches: list[Any], value_of: Any) -> None:
        """Fill the table; ``value_of(match)`` gives the third column's text."""
        self.clearContents()
        self.setRowCount(len(matches))
        self.matches, self.buttons = list(matches), []
        for row, m in enumerate(matches):
            button = QToolButton()
            button.setText(PLAY)
            button.setAutoRaise(True)
            button.clicked.connect(lambda _=False, m=m: self.play_clicked.emit(m))
            self.setCellWidget(row, 0, button)
            self.buttons.append(button)
            title = QTableWidgetItem(str(m.title))
            title.setToolTip(str(m.path))
            self.setItem(row, 1, title)
            value = QTableWidgetItem(value_of(m))
            value.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.setItem(row, 2, value)
            when = QTableWidgetItem(when_text(m))
            when.setToolTip(f"recorded {m.start_local} (local time)" if getattr(m, "start_local", None) else "")
            self.setItem(row, 3, when)
        self.set_play_enabled(self._play_enabled, self._play_reason)

    def set_playing(self, path: str | None) -> None:
        for m, button in zip(self.matches, self.buttons, strict=True):
            button.setText(STOP if path is not None and str(m.path) == str(path) else PLAY)

    def set_play_enabled(self, enabled: bool, reason: str) -> None:
        self._play_enabled, self._play_reason = enabled, reason
        for button in self.buttons:
            button.setEnabled(enabled)
            button.setToolTip("Play / stop" if enabled else f"Playback unavailable: {reason}")

    def _selection_changed(self) -> None:
        rows = {i.row() for i in self.selectedIndexes()}
        if rows:
            self.row_chosen.emit(self.matches[min(rows)])


class RecordingsPanel(QWidget):
    """The "Listen" tab."""

    play_requested = Signal(object)  # RecordingMatch; the caller toggles play/stop
    clip_requested = Signal(object)
    hours_changed = Signal(object)  # (from, to) local hours, or None for all hours

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel("Click a tile on the map to hear what it should sound like.")
        self.header.setObjectName("panelHeader")
        self.header.setWordWrap(True)
        self.best = RecordingTable("similarity")
        self.nearest = RecordingTable("distance")
        self.spectrogram = SpectrogramView("Spectrogram")
        for table in (self.best, self.nearest):
            table.play_clicked.connect(self.play_requested)
            table.row_chosen.connect(self.clip_requested)
        best_box, nearest_box = QWidget(), QWidget()
        for box, title, table in ((best_box, "Best-matching recordings", self.best),
                                  (nearest_box, "Nearest recordings", self.nearest)):
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 4, 0, 0)
            label = QLabel(title)
            label.setObjectName("sectionTitle")
            lay.addWidget(label)
            lay.addWidget(table)
        # Panes the user can resize; the window adds the tile's predicted soundscape on top (add_top_pane).
        self.splitter = splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(best_box)
        splitter.addWidget(nearest_box)
        splitter.addWidget(self.spectrogram)
        splitter.setSizes([260, 180, 240])
        self.hour_filter = QCheckBox("Only recordings from local hours")
        self.hour_filter.setToolTip("Limit both lists to recordings that started in this local hour-of-day range "
                                    "(e.g. 4 to 8 for the dawn chorus; 21 to 4 wraps midnight). Recordings "
                                    "without a time (not from a campaign) are left out while it is on.")
        self.hour_from, self.hour_to = QSpinBox(), QSpinBox()
        for box, value in ((self.hour_from, 4), (self.hour_to, 8)):
            box.setRange(0, 24)
            box.setValue(value)
            box.setSuffix(":00")
            box.valueChanged.connect(self._emit_hours)
        self.hour_filter.toggled.connect(self._emit_hours)
        filter_row = QHBoxLayout()
        filter_row.addWidget(self.hour_filter)
        filter_row.addWidget(self.hour_from)
        filter_row.addWidget(QLabel("to"))
        filter_row.addWidget(self.hour_to)
        filter_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(filter_row)
        layout.addWidget(splitter, 1)

    def add_top_pane(self, pane: QWidget, height: int = 200) -> None:
        """Put ``pane`` above the recording lists, in the same splitter (so its height can be dragged); when it
        appears it gets ``height`` pixels unless the user gave it some before."""
        self._top_pane, self._top_height = pane, height
        self.splitter.insertWidget(0, pane)
        pane.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is getattr(self, "_top_pane", None) and event.type() == QEvent.Type.Show:
            sizes = self.splitter.sizes()
            if sizes[0] < self._top_height // 2 and sum(sizes[1:]) > 0:  # hidden until now: make room,
                rest = sizes[1:]  # taken from the other panes in proportion, so the lists keep their shares
                height = min(self._top_height, sum(sizes) // 3)
                scale = (sum(sizes) - height) / sum(rest)
                self.splitter.setSizes([height, *(int(v * scale) for v in rest)])
        return super().eventFilter(watched, event)

    def hours(self) -> tuple[float, float] | None:
        """The chosen local hour range, or None (filter off, or an empty range)."""
        start, end = self.hour_from.value(), self.hour_to.value()
        if not self.hour_filter.isChecked() or start == end:
            return None
        return float(start), float(end)

    def _emit_hours(self, *_: Any) -> None:
        self.hours_changed.emit(self.hours())

    def show_selection(self, tile: TileSelection | None) -> None:
        if tile is None:
            self.header.setText("Click a tile on the map to hear what it should sound like.")
            self.best.set_matches([], str)
            self.nearest.set_matches([], str)
            self.spectrogram.clear("Spectrogram")
            return
        place = format_place(tile.lat, tile.lon, getattr(self, "coord_order", "latlon"), 5)
        self.header.setText(f"<b>Tile {tile.tile_id}</b> &nbsp; {place}")
        self.best.set_matches(tile.best, lambda m: f"{m.score:.3f}")
        self.nearest.set_matches(tile.nearest, lambda m: f"{m.km:.2f} km" if m.km < 100 else f"{m.km:.0f} km")
        self.spectrogram.clear("Spectrogram")

    def show_clip(self, clip: Any, log_mel_db: Any, seconds: float) -> None:
        if clip is None:
            self.spectrogram.clear("Spectrogram")
        elif log_mel_db is None:
            self.spectrogram.clear(f"{clip.title}: computing the spectrogram…")
        else:
            self.spectrogram.set_log_mel(log_mel_db, seconds, f"{clip.title} ({seconds:.1f} s)")

    def set_playing(self, path: str | None) -> None:
        self.best.set_playing(path)
        self.nearest.set_playing(path)

    def set_play_enabled(self, enabled: bool, reason: str) -> None:
        self.best.set_play_enabled(enabled, reason)
        self.nearest.set_play_enabled(enabled, reason)
