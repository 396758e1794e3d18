"""Record a sound (or open a file) to find the landscapes that sound like it.

While recording, a QTimer on the GUI thread reads what the audio callback put into the ring buffer:
the level meter and the live scrolling spectrogram (``engine.audio.StreamingLogMel``) are fed from it.
The callback itself never touches Qt.
"""

from __future__ import annotations

from typing import Any

import soxr
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.services.audio_io import level_dbfs
from app.state import SoundQueryResult
from app.widgets.gallery import MatchesGallery
from app.widgets.level_meter import LevelMeter
from app.widgets.spectrogram_view import SpectrogramView
from engine.audio import StreamingLogMel

MONITOR_INTERVAL_MS = 40  # 25 redraws a second
LEVEL_WINDOW_S = 0.05


class RecordPanel(QWidget):
    """The "Sound search" tab: device, record/stop, level, live spectrogram, query spectrogram, gallery."""

    record_clicked = Signal()
    stop_clicked = Signal()  # the user pressed Stop, or the maximum length was reached
    open_file_clicked = Signal()
    device_chosen = Signal(object)  # AudioDevice
    tile_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device_combo = QComboBox()
        self.device_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.device_combo.setMinimumContentsLength(18)
        self.device_combo.currentIndexChanged.connect(self._device_changed)
        self.max_seconds = QDoubleSpinBox()
        self.max_seconds.setRange(1.0, 600.0)
        self.max_seconds.setDecimals(0)
        self.max_seconds.setSuffix(" s max")
        self.max_seconds.setValue(10.0)
        self.record_button = QPushButton("● Record")
        self.record_button.setObjectName("recordButton")
        self.record_button.clicked.connect(self._record_toggled)
        self.open_button = QPushButton("Open audio file…")
        self.open_button.clicked.connect(self.open_file_clicked)
        self.meter = LevelMeter()
        self.elapsed = QLabel("")
        self.elapsed.setMinimumWidth(60)
        self.live = SpectrogramView("Live input", live=True)
        self.query_view = SpectrogramView("Record a clip or open an audio file to search the map by sound.")
        self.gallery = MatchesGallery()
        self.gallery.tile_clicked.connect(self.tile_clicked)
        self.gallery_title = QLabel("Best-matching places")
        self.gallery_title.setObjectName("sectionTitle")

        controls = QGridLayout()
        controls.addWidget(QLabel("Input"), 0, 0)
        controls.addWidget(self.device_combo, 0, 1, 1, 2)
        controls.addWidget(self.record_button, 1, 0)
        controls.addWidget(self.max_seconds, 1, 1)
        controls.addWidget(self.open_button, 1, 2)
        meter_row = QHBoxLayout()
        meter_row.addWidget(self.meter, 1)
        meter_row.addWidget(self.elapsed)
        controls.addLayout(meter_row, 2, 0, 1, 3)
        controls.setColumnStretch(1, 1)
        gallery_box = QWidget()
        gl = QVBoxLayout(gallery_box)
        gl.setContentsMargins(0, 4, 0, 0)
        gl.addWidget(self.gallery_title)
        gl.addWidget(self.gallery)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.live)
        splitter.addWidget(self.query_view)
        splitter.addWidget(gallery_box)
        splitter.setSizes([150, 170, 360])
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)

        self.recorder: Any = None
        self._pos = 0
        self._stream: StreamingLogMel | None = None
        self._resampler: Any = None
        self._timer = QTimer(self)
        self._timer.setInterval(MONITOR_INTERVAL_MS)
        self._timer.timeout.connect(self._poll)
        self._recording = False
        self._updating_devices = False

    # ---------------------------------------------------------------------------------- devices

    def set_devices(self, devices: list[Any], current: Any, available: bool, reason: str) -> None:
        self._updating_devices = True
        self.device_combo.clear()
        for d in devices:
            self.device_combo.addItem(d.label, d)
        if current is not None:
            i = next((k for k, d in enumerate(devices) if d.index == current.index), -1)
            self.device_combo.setCurrentIndex(i)
        self._updating_devices = False
        self.device_combo.setEnabled(available and bool(devices))
        self.record_button.setEnabled(available)
        tip = "Record from the chosen input" if available else f"Recording unavailable: {reason}"
        self.record_button.setToolTip(tip)
        self.device_combo.setToolTip(tip)
        if not devices:
            self.device_combo.addItem("no input device")

    def _device_changed(self, index: int) -> None:
        if not self._updating_devices and index >= 0:
            device = self.device_combo.itemData(index)
            if device is not None:
                self.device_chosen.emit(device)

    # -------------------------------------------------------------------------------- recording

    def _record_toggled(self) -> None:
        if self._recording:
            self.stop_clicked.emit()
        else:
            self.record_clicked.emit()

    def start_monitor(self, recorder: Any, cfg: Any) -> None:
        """Follow ``recorder``'s ring buffer on a timer (level, live spectrogram, auto-stop)."""
        self.recorder, self._pos = recorder, 0
        self._stream = StreamingLogMel(cfg)
        self._resampler = None if recorder.rate == cfg.sample_rate else soxr.ResampleStream(
            recorder.rate, cfg.sample_rate, 1, dtype="float32", quality="LQ")
        self.live.configure(cfg)
        self.live.caption.setText(f"Recording from {recorder.device.name}")
        self._recording = True
        self.record_button.setText("■ Stop")
        self.open_button.setEnabled(False)
        self.meter.reset()
        self._timer.start()

    def stop_monitor(self) -> None:
        self._timer.stop()
        self._poll(final=True)
        self.recorder, self._stream, self._resampler = None, None, None
        self._recording = False
        self.record_button.setText("● Record")
        self.open_button.setEnabled(True)
        self.live.caption.setText("Live input")

    def _poll(self, final: bool = False) -> None:
        recorder = self.recorder
        if recorder is None or self._stream is None:
            return
        samples, self._pos = recorder.ring.read_since(self._pos)
        self.meter.set_level(level_dbfs(recorder.ring.latest(int(LEVEL_WINDOW_S * recorder.rate))))
        self.elapsed.setText(f"{recorder.seconds:4.1f} s")
        if samples.size:
            y = samples if self._resampler is None else self._resampler.resample_chunk(samples)
            if y.size:
                self.live.append_frames(self._stream.push(y))
        if recorder.full and not final:
            self.stop_clicked.emit()

    @property
    def monitoring(self) -> bool:
        return self._timer.isActive()

    # ----------------------------------------------------------------------------------- result

    def show_result(self, result: SoundQueryResult | None, thumbnail: Any, cfg: Any) -> None:
        if result is None:
            self.query_view.clear("Record a clip or open an audio file to search the map by sound.")
            self.gallery.clear()
            return
        if cfg is not None:
            self.query_view.configure(cfg)
        name = "Microphone recording" if result.source == "microphone" else result.source.rsplit("/", 1)[-1]
        self.query_view.set_log_mel(result.log_mel_db, result.seconds, f"{name} ({result.seconds:.1f} s)")
        self.gallery.set_matches(result.top, thumbnail)
        self.gallery_title.setText(f"Best-matching places ({len(result.top)} of {len(result.scores):,} tiles)")

    def level_now(self) -> float:
        return float(self.meter.level_db)

    def stop_timers(self) -> None:
        self._timer.stop()
