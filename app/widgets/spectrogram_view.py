"""A spectrogram plot: time (s) across, frequency (Hz, mel-spaced) up, a perceptual colour map.

Used for the selected recording, the sound query, and (in live mode) the scrolling spectrogram while
recording: new log-mel frames are appended to a fixed-width image on each timer tick.

The colour scale is absolute (the same dB for every clip, with a colour bar), not stretched to each
clip's loudest frame: silence looks silent and a quiet clip looks quiet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.services.spectrogram import hz_to_mel

SPECTROGRAM_COLOURMAP = "inferno"
# The front-end's log-mel power in dB: a full-scale tone reads about +40, full-scale noise about +25 in
# each band, a quiet field recording (-50 dBFS RMS) about -30, digital silence -100 (its floor). The
# range keeps the loudest clips and a recorder's noise floor apart and paints silence black.
LEVELS_DB = (-80.0, 40.0)
TICK_HZ = (100, 500, 1000, 2000, 5000, 10000, 20000)


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


class SpectrogramView(QWidget):
    """Shows a (n_mels, T) dB log-mel; ``live=True`` keeps a scrolling window of ``window_s`` seconds."""

    def __init__(self, title: str = "", live: bool = False, window_s: float = 8.0,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.live, self.window_s = live, window_s
        self.cfg: Any = None
        self.plot = pg.PlotWidget(background=QColor(250, 250, 250))
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.setLabel("left", "frequency (Hz)")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        colour_map = pg.colormap.get(SPECTROGRAM_COLOURMAP)
        self.image.setColorMap(colour_map)
        self.plot.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(values=LEVELS_DB, colorMap=colour_map, interactive=False, width=12,
                                          label="dB")
        self.colour_bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        self.caption = QLabel(title)
        self.caption.setObjectName("spectrogramCaption")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot, 1)
        self.data: np.ndarray | None = None
        self.seconds = 0.0
        self._frames = 0

    def configure(self, cfg: Any) -> None:
        """Use the front-end ``cfg`` (band frequencies, frame rate)."""
        self.cfg = cfg
        self.plot.getAxis("left").setTicks([frequency_ticks(cfg)])
        self.plot.setYRange(0, cfg.n_mels, padding=0)
        if self.live:
            width = int(round(self.window_s * cfg.frames_per_second))
            self.data = np.full((cfg.n_mels, width), np.nan, np.float32)
            self._frames = 0
            self.image.clear()  # nothing is drawn until the first frames arrive
            self.plot.setXRange(-self.window_s, 0, padding=0)

    def set_log_mel(self, log_mel_db: np.ndarray, seconds: float, caption: str | None = None) -> None:
        """Show a whole clip on the absolute colour scale."""
        if caption is not None:
            self.caption.setText(caption)
        self.data = np.asarray(log_mel_db, dtype=np.float32)
        self.seconds = float(seconds)
        self.image.setImage(self.data, levels=LEVELS_DB, autoLevels=False)
        self.image.setRect(QRectF(0, 0, max(self.seconds, 1e-3), self.data.shape[0]))
        self.plot.setXRange(0, max(self.seconds, 1e-3), padding=0)
        self.plot.setYRange(0, self.data.shape[0], padding=0)

    def clear(self, caption: str = "") -> None:
        self.caption.setText(caption)
        self.image.clear()
        self.data = None
        self.seconds = 0.0
        if self.live and self.cfg is not None:
            self.configure(self.cfg)

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
        shown = np.nan_to_num(self.data, nan=LEVELS_DB[0])  # not yet recorded: drawn as silence
        self.image.setImage(shown, levels=LEVELS_DB, autoLevels=False)
        self.image.setRect(QRectF(-self.window_s, 0, self.window_s, self.data.shape[0]))
        self.plot.setXRange(-self.window_s, 0, padding=0)
