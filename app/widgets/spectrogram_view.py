"""A spectrogram plot: time (s) across, frequency (Hz, mel-spaced) up, a perceptual colour map.

Used for the selected recording, the sound query, and (in live mode) the scrolling spectrogram while
recording: new log-mel frames are appended to a fixed-width image on each timer tick.

The colour scale is absolute (the same dB for every clip, with a colour bar), not stretched to each
clip's loudest frame: silence looks silent and a quiet clip looks quiet. Its range is the user's (the
dB spin boxes). A whole clip can be zoomed and panned with the mouse (wheel, drag; double-click fits
it again); a click asks to seek there; a playhead follows playback.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from app.services.spectrogram import hz_to_mel

SPECTROGRAM_COLOURMAP = "inferno"
# The front-end's log-mel power in dB: a full-scale tone reads about +40, full-scale noise about +25 in
# each band, a quiet field recording (-50 dBFS RMS) about -30, digital silence -100 (its floor). The
# range keeps the loudest clips and a recorder's noise floor apart and paints silence black.
LEVELS_DB = (-80.0, 40.0)
TICK_HZ = (100, 500, 1000, 2000, 5000, 10000, 20000)
WINDOW_SIZES = (512, 1024, 2048, 4096)  # STFT window (samples) for the display of a clip
PLAYHEAD_COLOUR = QColor(0, 200, 255)


def frequency_ticks(cfg: Any) -> list[tuple[float, str]]:
    """(row position, label) for round frequencies inside the front-end's band range.

    Rows are equally spaced in mel; band k's centre is at row k + 0.5, so a frequency sits at
    ``(mel(f) - mel(f_min)) / (mel(f_max) - mel(f_min)) * (n_mels + 1) - 0.5``.
    """
    lo, hi = float(hz_to_mel(cfg.f_min)), float(hz_to_mel(cfg.f_max))
    ticks = []
    for f in TICK_HZ:
        if cfg.f_min <= f <= cfg.f_max:
            row = (float(hz_to_mel(f)) - lo) / (hi - lo) * (cfg.n_mels + 1) - 0.5
            ticks.append((row, f"{f // 1000}k" if f >= 1000 else str(f)))
    return ticks


def thin_ticks(ticks: list[tuple[float, str]], px_per_row: float, min_px: float) -> list[tuple[float, str]]:
    """Keep ticks at least ``min_px`` pixels apart (from the top, so the highest label stays), so that
    labels never overlap in a short plot."""
    kept: list[tuple[float, str]] = []
    for row, label in sorted(ticks, reverse=True):
        if not kept or (kept[-1][0] - row) * px_per_row >= min_px:
            kept.append((row, label))
    return sorted(kept)


class SpectrogramView(QWidget):
    """Shows a (n_mels, T) dB log-mel; ``live=True`` keeps a scrolling window of ``window_s`` seconds."""

    seek_requested = Signal(float)  # seconds into the clip (a click on the plot)
    window_size_changed = Signal(int)  # STFT window in samples (the caller recomputes the clip)

    def __init__(self, title: str = "", live: bool = False, window_s: float = 8.0,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.live, self.window_s = live, window_s
        self.cfg: Any = None
        self.levels = LEVELS_DB
        self.plot = pg.PlotWidget(background=QColor(250, 250, 250))
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setLabel("bottom", "time (s)")
        self.plot.setLabel("left", "Hz")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        colour_map = pg.colormap.get(SPECTROGRAM_COLOURMAP)
        self.image.setColorMap(colour_map)
        self.plot.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(values=LEVELS_DB, colorMap=colour_map, interactive=False, width=12,
                                          label="dB")
        self.colour_bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        self.playhead = pg.InfiniteLine(pos=0.0, angle=90, movable=False, pen=pg.mkPen(PLAYHEAD_COLOUR, width=2))
        self.playhead.setZValue(10)
        self.playhead.hide()
        self.plot.addItem(self.playhead)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        view = self.plot.getViewBox()
        view.sigResized.connect(self._update_ticks)
        view.sigYRangeChanged.connect(self._update_ticks)
        self.caption = QLabel(title)
        self.caption.setObjectName("spectrogramCaption")
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self.caption, 1)
        self.floor_spin = self._db_spin(int(LEVELS_DB[0]), "Colour scale floor (dB): quieter is black")
        self.ceiling_spin = self._db_spin(int(LEVELS_DB[1]), "Colour scale ceiling (dB): louder is white")
        self.window_combo = QComboBox()
        for n in WINDOW_SIZES:
            self.window_combo.addItem(f"{n}", n)
        self.window_combo.setCurrentIndex(WINDOW_SIZES.index(2048))  # the front-end's default
        self.window_combo.setToolTip("STFT window (samples): longer resolves pitch, shorter resolves time")
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Show the whole clip again (or double-click the plot)")
        self.fit_button.clicked.connect(self.reset_view)
        if not live:
            header.addWidget(QLabel("dB"))
            header.addWidget(self.floor_spin)
            header.addWidget(self.ceiling_spin)
            header.addWidget(self.window_combo)
            header.addWidget(self.fit_button)
        self.floor_spin.valueChanged.connect(self._levels_changed)
        self.ceiling_spin.valueChanged.connect(self._levels_changed)
        self.window_combo.currentIndexChanged.connect(
            lambda i: self.window_size_changed.emit(int(self.window_combo.itemData(i))))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.plot, 1)
        self.data: np.ndarray | None = None
        self.seconds = 0.0
        self._frames = 0
        self.shown_ticks: list[tuple[float, str]] = []  # the frequency labels drawn now
        self._show_empty()

    def _db_spin(self, value: int, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(-140, 80)
        spin.setSingleStep(10)
        spin.setValue(value)
        spin.setToolTip(tip)
        return spin

    def _show_empty(self) -> None:
        """An empty plot with honest axes: time from 0, no frequency labels until a front-end is known."""
        if self.cfg is None:
            self.plot.getAxis("left").setTicks([[]])
        self.plot.setXRange(0, self.window_s if self.live else 1.0, padding=0)
        self.plot.setYRange(0, self.cfg.n_mels if self.cfg is not None else 1.0, padding=0)

    def configure(self, cfg: Any) -> None:
        """Use the front-end ``cfg`` (band frequencies, frame rate)."""
        if self.cfg is None or getattr(self.cfg, "n_fft", None) != getattr(cfg, "n_fft", None):
            self.set_window_size(int(cfg.n_fft))
        self.cfg = cfg
        self.plot.setYRange(0, cfg.n_mels, padding=0)
        self._update_ticks()
        if self.live:
            width = int(round(self.window_s * cfg.frames_per_second))
            self.data = np.full((cfg.n_mels, width), np.nan, np.float32)
            self._frames = 0
            self.image.clear()  # nothing is drawn until the first frames arrive
            self.plot.setXRange(0, self.window_s, padding=0)

    def _update_ticks(self, *args: Any) -> None:
        """Frequency labels for the height the plot has now (fewer in a short plot: none overlap)."""
        if self.cfg is None:
            return
        view = self.plot.getViewBox()
        _, (y0, y1) = view.viewRange()
        px_per_row = view.height() / max(y1 - y0, 1e-6)
        min_px = 1.2 * QFontMetrics(self.plot.getAxis("left").style["tickFont"] or self.font()).height()
        self.shown_ticks = thin_ticks(frequency_ticks(self.cfg), px_per_row, min_px)
        self.plot.getAxis("left").setTicks([self.shown_ticks])

    def set_window_size(self, n_fft: int) -> None:
        """Show ``n_fft`` as the chosen window without asking for a recomputation."""
        index = self.window_combo.findData(int(n_fft))
        if index >= 0:
            self.window_combo.blockSignals(True)
            self.window_combo.setCurrentIndex(index)
            self.window_combo.blockSignals(False)

    def set_log_mel(self, log_mel_db: np.ndarray, seconds: float, caption: str | None = None) -> None:
        """Show a whole clip on the absolute colour scale (zoom and pan with the mouse)."""
        if caption is not None:
            self.caption.setText(caption)
        self.data = np.asarray(log_mel_db, dtype=np.float32)
        self.seconds = float(seconds)
        self.image.setImage(self.data, levels=self.levels, autoLevels=False)
        self.image.setRect(QRectF(0, 0, max(self.seconds, 1e-3), self.data.shape[0]))
        view = self.plot.getViewBox()
        view.setLimits(xMin=0.0, xMax=max(self.seconds, 1e-3), yMin=0.0, yMax=float(self.data.shape[0]),
                       minXRange=min(0.05, max(self.seconds, 1e-3)), minYRange=2.0)
        self.plot.setMouseEnabled(x=True, y=True)
        self.reset_view()

    def reset_view(self) -> None:
        """Fit the whole clip (time and frequency)."""
        if self.data is None or self.live:
            return
        self.plot.setXRange(0, max(self.seconds, 1e-3), padding=0)
        self.plot.setYRange(0, self.data.shape[0], padding=0)

    def view_range(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((t0, t1) seconds, (row0, row1)) now shown."""
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        return (float(x0), float(x1)), (float(y0), float(y1))

    def clear(self, caption: str = "") -> None:
        self.caption.setText(caption)
        self.image.clear()
        self.data = None
        self.seconds = 0.0
        self.set_playhead(None)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.getViewBox().setLimits(xMin=None, xMax=None, yMin=None, yMax=None, minXRange=None, minYRange=None)
        if self.live and self.cfg is not None:
            self.configure(self.cfg)
        else:
            self._show_empty()

    # ----------------------------------------------------------------------- colour scale

    def set_levels(self, floor_db: float, ceiling_db: float) -> None:
        """The colour scale's range in dB (floor black, ceiling white)."""
        if ceiling_db <= floor_db:
            ceiling_db = floor_db + 1.0
        self.levels = (float(floor_db), float(ceiling_db))
        self.colour_bar.setLevels(values=self.levels)
        if self.data is not None and not self.live:
            self.image.setLevels(self.levels)

    def _levels_changed(self) -> None:
        self.set_levels(self.floor_spin.value(), self.ceiling_spin.value())

    # ----------------------------------------------------------------------- playhead and seek

    def set_playhead(self, seconds: float | None) -> None:
        """Draw the playhead at ``seconds`` (None hides it)."""
        if seconds is None:
            self.playhead.hide()
            return
        self.playhead.setPos(float(seconds))
        self.playhead.show()

    @property
    def playhead_seconds(self) -> float | None:
        return float(self.playhead.value()) if self.playhead.isVisible() else None

    def seconds_at(self, scene_pos: Any) -> float:
        """The clip time (s) under a scene position."""
        return float(self.plot.getViewBox().mapSceneToView(scene_pos).x())

    def _clicked(self, event: Any) -> None:
        if self.live or self.data is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if not self.plot.getViewBox().sceneBoundingRect().contains(event.scenePos()):
            return  # a click on an axis or the colour bar
        if event.double():
            self.reset_view()
            return
        self.seek_requested.emit(max(0.0, min(self.seconds, self.seconds_at(event.scenePos()))))

    # -------------------------------------------------------------------------------- live mode

    @property
    def frames_received(self) -> int:
        return self._frames

    def append_frames(self, frames_db: np.ndarray) -> None:
        """Scroll ``frames_db`` (n_mels, k) in from the right (live mode)."""
        if self.data is None or frames_db.size == 0:
            return
        k = frames_db.shape[1]
        width = self.data.shape[1]
        if k >= width:
            self.data[:] = frames_db[:, -width:]
        else:
            self.data[:, :-k] = self.data[:, k:]
            self.data[:, -k:] = frames_db
        self._frames += k
        self._draw_live()

    def _draw_live(self) -> None:
        if self.data is None or self.cfg is None:
            return
        # Time is seconds since the recording started: the newest frame sits at the elapsed time, and
        # the part of the window from before the start (negative times) is outside the shown range.
        elapsed = self._frames / self.cfg.frames_per_second
        shown = np.nan_to_num(self.data, nan=self.levels[0])
        self.image.setImage(shown, levels=self.levels, autoLevels=False)
        self.image.setRect(QRectF(elapsed - self.window_s, 0, self.window_s, self.data.shape[0]))
        self.plot.setXRange(max(0.0, elapsed - self.window_s), max(self.window_s, elapsed), padding=0)
