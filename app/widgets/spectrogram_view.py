"""A spectrogram plot: time (s) across, frequency (Hz, mel-spaced) up, a perceptual colour map.

Used for the selected recording, the sound query, and (in live mode) the scrolling spectrogram while
recording: new log-mel frames are appended to a fixed-width image on each timer tick, with fixed
levels so the colours do not jump.
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
DYNAMIC_RANGE_DB = 80.0
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
        self.image.setColorMap(pg.colormap.get(SPECTROGRAM_COLOURMAP))
        self.plot.addItem(self.image)
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
        """Show a whole clip. Levels: its maximum down to 80 dB below."""
        if caption is not None:
            self.caption.setText(caption)
        self.data = np.asarray(log_mel_db, dtype=np.float32)
        self.seconds = float(seconds)
        top = float(np.max(self.data)) if self.data.size else 0.0
        self.image.setImage(self.data, levels=(top - DYNAMIC_RANGE_DB, top), autoLevels=False)
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
        # Levels follow the loudest frame in the window (8 s), so they change slowly, not per frame.
        finite = self.data[np.isfinite(self.data)]
        top = float(finite.max()) if finite.size else 0.0
        shown = np.nan_to_num(self.data, nan=top - DYNAMIC_RANGE_DB)
        self.image.setImage(shown, levels=(top - DYNAMIC_RANGE_DB, top), autoLevels=False)
        self.image.setRect(QRectF(-self.window_s, 0, self.window_s, self.data.shape[0]))
        self.plot.setXRange(-self.window_s, 0, padding=0)
