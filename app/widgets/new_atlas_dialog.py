"""File > New atlas from imagery…: GeoTIFFs, the tile size on the ground (with the tile grid drawn over
the image), the model, a name; a warning when the image's pixels are far from the model's training
pixels, and a tile size the engine can cut pre-filled when the image is too coarse for the one asked.

The measuring is :mod:`app.services.atlas_library`'s; this dialog draws and collects the answers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.services.atlas_library import ImagePlan, inspect_image, resolution_warning
from engine.errors import UserInputError

log = logging.getLogger(__name__)

GEOTIFF_FILTER = "GeoTIFF (*.tif *.tiff);;All files (*)"
DEFAULT_TILE_M = 200.0
PREVIEW_W, PREVIEW_H = 420, 300
MAX_GRID_LINES = 60  # beyond this only every k-th grid line is drawn (all of them would fill the preview)


def grid_step(cols: int, rows: int) -> int:
    """Draw every k-th grid line so that at most about MAX_GRID_LINES are drawn."""
    return max(1, -(-(cols + rows) // MAX_GRID_LINES))


def grid_pixmap(plan: ImagePlan, tile_size_m: float) -> QPixmap:
    """The image's preview with the engine's tile grid drawn over it (every k-th line when tiles are tiny)."""
    preview = np.ascontiguousarray(plan.preview[..., :3], dtype=np.uint8)
    h, w = preview.shape[:2]
    image = QImage(preview.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    cols, rows, tile_px = plan.grid(tile_size_m)
    sx, sy = w / plan.width, h / plan.height
    painter = QPainter(image)
    painter.setPen(QPen(QColor(255, 214, 0, 230), 1))
    step = grid_step(cols, rows)
    for c in list(range(0, cols + 1, step)) + [cols]:
        painter.drawLine(round(c * tile_px * sx), 0, round(c * tile_px * sx), round(rows * tile_px * sy))
    for r in list(range(0, rows + 1, step)) + [rows]:
        painter.drawLine(0, round(r * tile_px * sy), round(cols * tile_px * sx), round(r * tile_px * sy))
    painter.end()
    return QPixmap.fromImage(image)


class NewAtlasDialog(QDialog):
    """Collects (images, tile size, model, name) for a new atlas.

    Args:
        models: ModelInfo of the known models (the first is the default unless ``current`` is given).
        current: the model in use (chosen first).
        start_dir: where the GeoTIFF chooser opens.
    """

    def __init__(self, models: list[Any], current: Path | None = None, start_dir: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New atlas from imagery")
        self.models = models
        self.start_dir = start_dir
        self.plans: list[ImagePlan] = []
        self.files = QListWidget()
        self.files.setMaximumHeight(80)
        add = QPushButton("Add GeoTIFFs…")
        add.clicked.connect(self._browse)
        self.name_edit = QLineEdit("my-atlas")
        self.model_combo = QComboBox()
        for m in models:
            self.model_combo.addItem(f"{m.name} ({m.kind})", m)
        if current is not None:
            index = next((i for i, m in enumerate(models) if m.path == current), 0)
            self.model_combo.setCurrentIndex(index)
        self.tile_spin = QDoubleSpinBox()
        self.tile_spin.setRange(1.0, 1_000_000.0)
        self.tile_spin.setDecimals(0)
        self.tile_spin.setSuffix(" m")
        self.tile_spin.setToolTip("The ground width of one tile; each tile is one place on the map")
        model = self.model
        # The ground a training image covered: tiles the size the model learnt from.
        self.tile_spin.setValue(round(model.ground_size_m) if model is not None and model.ground_size_m
                                else DEFAULT_TILE_M)
        self.grid_label = QLabel("")
        self.preview = QLabel("Add a GeoTIFF to see its tile grid")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setFixedSize(PREVIEW_W, PREVIEW_H)
        self.note = QLabel("")  # the tile size was changed so the engine can cut tiles
        self.note.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setObjectName("audioWarning")
        self.warning.setStyleSheet("color: #b71c1c;")
        self.warning.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Build atlas")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        files_row = QHBoxLayout()
        files_row.addWidget(self.files, 1)
        files_row.addWidget(add, 0, Qt.AlignmentFlag.AlignTop)
        form = QFormLayout()
        form.addRow("Imagery", files_row)
        form.addRow("Name", self.name_edit)
        form.addRow("Model", self.model_combo)
        form.addRow("Tile size", self.tile_spin)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.grid_label)
        layout.addWidget(self.note)
        layout.addWidget(self.warning)
        layout.addWidget(self.buttons)
        self.tile_spin.valueChanged.connect(self._update)
        self.model_combo.currentIndexChanged.connect(self._update)
        self._update()

    @property
    def model(self) -> Any:
        return self.model_combo.currentData()

    # --------------------------------------------------------------------------------- imagery

    def _browse(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "GeoTIFF imagery for the new atlas", self.start_dir,
                                                GEOTIFF_FILTER)
        for p in paths:
            self.add_image(p)

    def add_image(self, path: str | Path) -> bool:
        """Measure a GeoTIFF and add it (a file that cannot be read is reported in the warning line)."""
        try:
            plan = inspect_image(path)
        except UserInputError as err:
            self.warning.setText(str(err))
            return False
        self.plans.append(plan)
        self.files.addItem(f"{plan.path.name}  ({plan.width} x {plan.height} px, {plan.pixel_m:.3g} m pixels)")
        if len(self.plans) == 1 and self.name_edit.text() == "my-atlas":
            self.name_edit.setText(plan.path.stem)
        smallest = max(p.smallest_tile_m for p in self.plans)
        if self.tile_spin.value() < smallest:
            asked = self.tile_spin.value()
            self.tile_spin.setValue(smallest)
            self.note.setText(f"Tiles of {asked:g} m would be narrower than 8 pixels of {plan.path.name}; the tile "
                              f"size is set to {smallest:,} m, the smallest this image allows.")
        self._update()
        return True

    # ---------------------------------------------------------------------------------- render

    def _update(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if not self.plans:
            ok.setEnabled(False)
            return
        plan = self.plans[0]
        size = self.tile_spin.value()
        cols, rows, tile_px = plan.grid(size)
        too_small = size < max(p.smallest_tile_m for p in self.plans)
        step = grid_step(cols, rows)
        self.grid_label.setText(f"{plan.path.name}: {cols} x {rows} = {cols * rows:,} tiles of {tile_px} px"
                                + (f" (lines every {step} tiles)" if step > 1 else "")
                                + (" — too small: tiles must span at least 8 px" if too_small else ""))
        ok.setEnabled(cols * rows > 0 and not too_small)
        self.preview.setPixmap(grid_pixmap(plan, size).scaled(
            PREVIEW_W, PREVIEW_H, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))
        model = self.model
        warnings = [resolution_warning(p.pixel_m, model.ground_m_per_px if model is not None else None)
                    for p in self.plans]
        self.warning.setText(next((w for w in warnings if w), ""))

    # ---------------------------------------------------------------------------------- answer

    def answers(self) -> tuple[list[Path], float, Path, str]:
        """(images, tile size in metres, bundle folder, atlas name)."""
        return ([p.path for p in self.plans], float(self.tile_spin.value()), self.model.path,
                self.name_edit.text().strip() or "atlas")
