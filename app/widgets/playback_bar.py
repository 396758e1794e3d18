"""Play/stop, the playhead's time, gain and normalise, under a spectrogram. It renders; the window
wires its signals to the audio controller."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QWidget


def format_clock(seconds: float) -> str:
    """'1:05.3' for 65.3 s."""
    seconds = max(0.0, float(seconds))
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


class PlaybackBar(QWidget):
    """▶ Play / ■ Stop, position / duration, gain (dB) and normalise."""

    play_clicked = Signal()  # the caller toggles play/stop
    gain_changed = Signal(float, bool)  # dB, normalise

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("Play this clip from the playhead (P); click the spectrogram to seek")
        self.play_button.clicked.connect(self.play_clicked)
        self.time_label = QLabel("0:00.0")
        self.time_label.setMinimumWidth(90)
        self.gain_spin = QDoubleSpinBox()
        self.gain_spin.setRange(-40.0, 40.0)
        self.gain_spin.setSingleStep(3.0)
        self.gain_spin.setDecimals(0)
        self.gain_spin.setSuffix(" dB")
        self.gain_spin.setToolTip("Playback gain (the search is unaffected)")
        self.normalise_box = QCheckBox("Normalise")
        self.normalise_box.setToolTip("Play the clip with its peak at -1 dBFS (quiet recordings become audible)")
        self.gain_spin.valueChanged.connect(self._gain)
        self.normalise_box.toggled.connect(self._gain)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.play_button)
        layout.addWidget(self.time_label)
        layout.addStretch(1)
        layout.addWidget(QLabel("Gain"))
        layout.addWidget(self.gain_spin)
        layout.addWidget(self.normalise_box)
        self._updating = False

    def _gain(self) -> None:
        if not self._updating:
            self.gain_changed.emit(float(self.gain_spin.value()), self.normalise_box.isChecked())

    def set_gain(self, gain_db: float, normalise: bool) -> None:
        """Show the remembered gain without announcing a change."""
        self._updating = True
        self.gain_spin.setValue(gain_db)
        self.normalise_box.setChecked(normalise)
        self._updating = False

    def set_playing(self, playing: bool) -> None:
        self.play_button.setText("■ Stop" if playing else "▶ Play")

    def set_position(self, seconds: float, duration: float) -> None:
        self.time_label.setText(f"{format_clock(seconds)} / {format_clock(duration)}")
