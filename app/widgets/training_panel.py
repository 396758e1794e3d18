"""Train a model on your own data: data folder, preset, epochs, Start/Cancel, live loss and recall
curves from the run's metrics.jsonl, ETA; at the end the app switches to the new model."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.state import EngineState, TrainingState
from app.widgets.engine_box import EngineBox

BLUE, ORANGE, GREEN, PURPLE = (QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44),
                               QColor(148, 103, 189))


def format_eta(seconds: float | None) -> str:
    """'ETA 1 h 05 min', 'ETA 3 min 20 s', 'ETA 12 s' (empty when unknown)."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    s = int(round(seconds))
    if s >= 3600:
        return f"ETA {s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"ETA {s // 60} min {s % 60:02d} s"
    return f"ETA {s} s"


def _plot(title: str, y_label: str, legend_offset: tuple[int, int]) -> pg.PlotWidget:
    plot = pg.PlotWidget(background=QColor(250, 250, 250))
    plot.setTitle(title, size="10pt")
    plot.setLabel("bottom", "step")
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMenuEnabled(False)
    for axis in ("left", "bottom"):
        plot.getAxis(axis).enableAutoSIPrefix(False)  # recalls of 0.03 read better than "30 (x0.001)"
    plot.addLegend(offset=legend_offset, labelTextSize="8pt", brush=(255, 255, 255, 210), pen=(200, 200, 200))
    return plot


class TrainingPanel(QWidget):
    """The "Train" tab."""

    start_clicked = Signal(str, str, int)  # data folder, preset, epochs
    cancel_clicked = Signal()

    def __init__(self, presets: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("pair table, SoundingEarth or demo world folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_edit, 1)
        data_row.addWidget(browse)
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(presets)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.epochs_spin.setValue(5)
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primaryButton")
        self.start_button.clicked.connect(self._start_or_cancel)
        self.phase_label = QLabel("Idle")
        self.phase_label.setWordWrap(True)
        self.eta_label = QLabel("")
        form = QFormLayout()
        form.addRow("Data", data_row)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Epochs", self.epochs_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.eta_label, 1)
        # Loss falls and recall rises: their legends sit in the corners the curves leave free.
        self.loss_plot = _plot("Training loss", "loss", (-6, 6))
        self.recall_plot = _plot("Retrieval recall", "recall", (6, 6))
        self.recall_plot.setLimits(yMin=0.0, yMax=1.0)
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen(BLUE, width=2), name="batch loss")
        self.r1_i2a = self.recall_plot.plot([], [], pen=pg.mkPen(BLUE, width=1.5), name="batch R@1 image→audio")
        self.r1_a2i = self.recall_plot.plot([], [], pen=pg.mkPen(ORANGE, width=1.5), name="batch R@1 audio→image")
        self.val_i2a = self.recall_plot.plot([], [], pen=pg.mkPen(GREEN, width=2), symbol="o", symbolSize=6,
                                             symbolBrush=GREEN, name="val R@10 image→audio")
        self.val_a2i = self.recall_plot.plot([], [], pen=pg.mkPen(PURPLE, width=2), symbol="o", symbolSize=6,
                                             symbolBrush=PURPLE, name="val R@10 audio→image")
        self.engine_box = EngineBox()  # shown only while the engine (PyTorch) is missing
        layout = QVBoxLayout(self)
        layout.addWidget(self.engine_box)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.phase_label)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(self.recall_plot, 1)
        self._running = False
        self._engine_ready = True

    def set_values(self, data: str | None, preset: str | None, epochs: int) -> None:
        if data:
            self.data_edit.setText(data)
        if preset and self.preset_combo.findText(preset) >= 0:
            self.preset_combo.setCurrentText(preset)
        self.epochs_spin.setValue(max(1, int(epochs)))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training data folder", self.data_edit.text())
        if folder:
            self.data_edit.setText(folder)

    def _start_or_cancel(self) -> None:
        if self._running:
            self.cancel_clicked.emit()
        else:
            self.start_clicked.emit(self.data_edit.text().strip(), self.preset_combo.currentText(),
                                    self.epochs_spin.value())

    def render(self, state: TrainingState) -> None:
        """Draw the state's phase, ETA and curves."""
        self._running = state.running
        self.start_button.setText("Cancel" if state.running else "Start training")
        self.start_button.setEnabled(state.running or self._engine_ready)
        for w in (self.data_edit, self.preset_combo, self.epochs_spin):
            w.setEnabled(not state.running)
        text = {
            "idle": "Idle",
            "starting": "Starting the engine…",
            "training": f"Training: epoch {state.epoch} of {state.epochs}, step {state.step} of {state.total_steps}",
            "exporting": "Exporting the model…",
            "reembedding": "Re-embedding the atlas with the new model…",
            "finished": "Finished",
            "cancelled": "Cancelled",
            "failed": "Failed",
        }[state.phase]
        if state.message and state.phase in ("finished", "cancelled", "failed"):
            text += f": {state.message}"
        self.phase_label.setText(text)
        self.eta_label.setText(format_eta(state.eta_s) if state.phase == "training" else "")
        c = state.curves
        self.loss_curve.setData(c.loss_steps, c.loss)
        self.r1_i2a.setData(c.recall_steps, c.r1_image_to_audio)
        self.r1_a2i.setData(c.recall_steps, c.r1_audio_to_image)
        self.val_i2a.setData(c.val_steps, c.val_r10_image_to_audio)
        self.val_a2i.setData(c.val_steps, c.val_r10_audio_to_image)
        # Headroom above the highest recall keeps the curves clear of the legend.
        top = max([0.0, *c.r1_image_to_audio, *c.r1_audio_to_image, *c.val_r10_image_to_audio,
                   *c.val_r10_audio_to_image])
        self.recall_plot.setYRange(0.0, min(1.0, max(0.1, 1.6 * top)), padding=0)

    def render_engine(self, state: EngineState) -> None:
        """Show the engine box while the engine is missing; Start waits for the engine."""
        self._engine_ready = state.phase == "available"
        self.engine_box.render(state)
        self.start_button.setEnabled(self._running or self._engine_ready)
