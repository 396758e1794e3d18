"""Record a sound (or open a file) to find the landscapes that sound like it.

While recording, the panel draws the :class:`~app.state.RecordingSession`: its level (the meter), its
length and the log-mel frames the live monitor (``app.services.live_monitor``, driven by the window's
timer through the audio controller) computed from the ring buffer. The panel computes nothing.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
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

from app.state import RecordingSession, SoundQueryResult
from app.widgets.gallery import MatchesGallery
from app.widgets.level_meter import LevelMeter
from app.widgets.spectrogram_view import SpectrogramView


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
        self.gallery_title.setWordWrap(True)
        self.warning_label = QLabel("")  # clipping, near-silence, DC offset of the last clip
        self.warning_label.setObjectName("audioWarning")
        self.warning_label.setStyleSheet("color: #b71c1c;")
        self.warning_label.setWordWrap(True)
        self.warning_label.hide()

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
        controls.addWidget(self.warning_label, 3, 0, 1, 3)
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

        self.session: RecordingSession | None = None
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

    def show_recording(self, session: RecordingSession) -> None:
        """Draw ``session`` until :meth:`end_recording`: its frames scroll in, its level moves the meter."""
        self.session = session
        self.live.configure(session.front_end)
        self.live.caption.setText(f"Recording from {session.device_name}")
        self._recording = True
        self.record_button.setText("■ Stop")
        self.open_button.setEnabled(False)
        self.warning_label.hide()
        self.meter.reset()
        session.frames_added.connect(self.live.append_frames)
        session.changed.connect(self._render_session)

    def _render_session(self) -> None:
        session = self.session
        if session is None:
            return
        if session.level is not None:
            self.meter.set_level(session.level.rms_dbfs, clipping=session.level.clipped)
        self.elapsed.setText(f"{session.seconds:4.1f} s")

    def end_recording(self) -> None:
        """The recording stopped (Stop, the maximum length, or a failure)."""
        if self.session is not None:
            self.session.frames_added.disconnect(self.live.append_frames)
            self.session.changed.disconnect(self._render_session)
        self.session = None
        self._recording = False
        self.record_button.setText("● Record")
        self.open_button.setEnabled(True)
        self.live.caption.setText("Live input")

    @property
    def monitoring(self) -> bool:
        return self.session is not None

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
        if result.levels is not None:
            self.meter.show_levels(result.levels)
        if not result.searched:
            self.gallery_title.setText(result.warnings[0][0].upper() + result.warnings[0][1:]
                                       if result.warnings else "No search was made")
        else:
            self.gallery_title.setText(f"Best-matching places ({len(result.top)} of {len(result.scores):,} tiles)")
        self.warning_label.setText("; ".join(w for w in result.warnings if "no search" not in w))
        self.warning_label.setVisible(bool(self.warning_label.text()))

    def level_now(self) -> float:
        return float(self.meter.level_db)
