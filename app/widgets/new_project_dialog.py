"""File > New project from recordings…: choose the recorder folder, the imagery (and a sites table when
the files carry no positions), see the scan summary with the sites on a small map, then one button trains,
exports and builds the atlas. Renders :class:`app.state.new_project_state.NewProjectState`; the work is
done by :class:`app.controllers.new_project_actions.NewProjectActions`."""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.state.new_project_state import NewProjectState

CSV_FILTER = "Tables (*.csv *.tsv *.txt);;All files (*)"
GEOTIFF_FILTER = "GeoTIFF (*.tif *.tiff);;All files (*)"


def _path_row(edit: QLineEdit, browse: QPushButton) -> QWidget:
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    lay.addWidget(browse)
    return row


class SitesMap(pg.PlotWidget):
    """The scanned sites (lon/lat) over the imagery outlines; sites outside every image in red."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=QColor(250, 250, 250))
        self.setMinimumHeight(180)
        self.setAspectLocked(True)
        self.getPlotItem().setLabel("bottom", "longitude")
        self.getPlotItem().setLabel("left", "latitude")
        self.outlines: list[pg.PlotDataItem] = []
        self.sites = pg.ScatterPlotItem(size=9, pen=pg.mkPen(30, 30, 30), pxMode=True)
        self.addItem(self.sites)

    def show_scan(self, sites: list[Any], rings: list[list[tuple[float, float]]]) -> None:
        for item in self.outlines:
            self.removeItem(item)
        self.outlines = []
        for ring in rings:
            item = pg.PlotDataItem([p[0] for p in ring], [p[1] for p in ring], pen=pg.mkPen(40, 110, 200, width=2),
                                   fillLevel=None)
            self.addItem(item)
            self.outlines.append(item)
        brushes = [pg.mkBrush(210, 50, 40) if s.in_imagery is False else pg.mkBrush(40, 160, 80) for s in sites]
        lats = [p[1] for ring in rings for p in ring] + [s.lat for s in sites]
        if lats:  # a degree of longitude is cos(latitude) as long as one of latitude: keep the ground's shape
            middle = math.radians((min(lats) + max(lats)) / 2)
            self.setAspectLocked(True, ratio=max(math.cos(middle), 0.05))
        self.sites.setData([s.lon for s in sites], [s.lat for s in sites], brush=brushes,
                           data=[s.name for s in sites], tip=lambda x, y, data: f"{data}\n{x:.5f}, {y:.5f}")
        self.autoRange()


class NewProjectDialog(QDialog):
    """The dialog; non-modal, so the map stays usable while the pipeline runs."""

    install_requested = Signal()  # show the Train tab's engine install

    def __init__(self, actions: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.actions = actions
        self.state: NewProjectState = actions.state
        self.setWindowTitle("New project from recordings")
        self.resize(720, 760)
        self.recordings = QLineEdit()
        self.recordings.setPlaceholderText("the folder your recorders' files were copied to")
        self.sites_table = QLineEdit()
        self.sites_table.setPlaceholderText("site, longitude, latitude [, recorder, timezone]")
        self.imagery = QListWidget()
        self.imagery.setMaximumHeight(70)
        browse_rec, self.browse_sites = QPushButton("Browse…"), QPushButton("Browse…")
        add_image, remove_image = QPushButton("Add GeoTIFF…"), QPushButton("Remove")
        browse_rec.clicked.connect(self._choose_recordings)
        self.browse_sites.clicked.connect(self._choose_sites)
        add_image.clicked.connect(self._add_imagery)
        remove_image.clicked.connect(lambda: [self.imagery.takeItem(self.imagery.row(i))
                                              for i in self.imagery.selectedItems()])
        image_buttons = QWidget()
        ib = QVBoxLayout(image_buttons)
        ib.setContentsMargins(0, 0, 0, 0)
        ib.addWidget(add_image)
        ib.addWidget(remove_image)
        ib.addStretch(1)
        image_row = QWidget()
        ir = QHBoxLayout(image_row)
        ir.setContentsMargins(0, 0, 0, 0)
        ir.addWidget(self.imagery, 1)
        ir.addWidget(image_buttons)
        form = QFormLayout()
        form.addRow("Recordings folder", _path_row(self.recordings, browse_rec))
        self.sites_row = _path_row(self.sites_table, self.browse_sites)
        self.sites_label = QLabel("Sites table")
        form.addRow(self.sites_label, self.sites_row)
        form.addRow("Imagery", image_row)

        self.scan_button = QPushButton("Scan")
        self.scan_button.clicked.connect(self._scan)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(actions.cancel)
        self.progress = QProgressBar()
        self.status = QLabel("Choose the recordings folder and the imagery, then Scan.")
        self.status.setWordWrap(True)
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setMaximumHeight(130)
        self.warnings = QListWidget()
        self.warnings.setMaximumHeight(110)
        self.map = SitesMap()
        self.run_button = QPushButton("Fine-tune, export and build the atlas")
        self.run_button.clicked.connect(self._run)
        self.engine_note = QLabel()
        self.engine_note.setWordWrap(True)
        self.install_button = QPushButton("Install the engine…")
        self.install_button.clicked.connect(self.install_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.scan_button)
        buttons.addWidget(self.run_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        close = QPushButton("Close")
        close.clicked.connect(self.hide)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Scan summary"))
        layout.addWidget(self.summary)
        layout.addWidget(QLabel("Warnings and skipped files"))
        layout.addWidget(self.warnings)
        layout.addWidget(self.map, 1)
        engine_row = QHBoxLayout()
        engine_row.addWidget(self.engine_note, 1)
        engine_row.addWidget(self.install_button)
        layout.addLayout(engine_row)
        layout.addLayout(buttons)
        self.state.changed.connect(self.render)
        self.render()

    # ------------------------------------------------------------------------------------ input

    def _choose_recordings(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Recordings folder")
        if folder:
            self.recordings.setText(folder)

    def _choose_sites(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Sites table", "", CSV_FILTER)
        if path:
            self.sites_table.setText(path)

    def _add_imagery(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Imagery (GeoTIFF)", "", GEOTIFF_FILTER)
        for path in paths:
            self.imagery.addItem(path)

    def imagery_paths(self) -> list[str]:
        return [self.imagery.item(i).text() for i in range(self.imagery.count())]

    def _scan(self) -> None:
        self.actions.scan(self.recordings.text().strip(), self.imagery_paths(), self.sites_table.text().strip() or None)

    def _run(self) -> None:
        self.actions.run()

    # ------------------------------------------------------------------------------------ render

    def render(self) -> None:
        s = self.state
        busy = s.busy
        show_sites = s.needs_sites_table or bool(self.sites_table.text().strip())
        self.sites_label.setVisible(show_sites)
        self.sites_row.setVisible(show_sites)
        self.scan_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.run_button.setEnabled(s.can_run)
        self.status.setText(s.message or "Choose the recordings folder and the imagery, then Scan.")
        done, total = s.progress
        if busy and total is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, max(total or 1, 1))
            full = s.phase in ("finished", "scanned")
            self.progress.setValue((total or 1) if full else (done if total else 0))
        self.engine_note.setText(f"{s.engine_reason}" if s.engine_reason else s.init_note)
        self.install_button.setVisible(bool(s.engine_reason))
        if s.scan is not None and self.summary.property("shown_scan") != id(s.scan):
            self.summary.setProperty("shown_scan", id(s.scan))
            self.summary.setPlainText(s.scan.text)
            self.warnings.clear()
            for warning in s.scan.warnings:
                self.warnings.addItem(f"warning: {warning}")
            for path, reason in s.scan.skipped:
                if reason != "not audio":  # other files beside the recordings; counted in the summary
                    self.warnings.addItem(f"skipped {path}: {reason}")
            self.map.show_scan(s.scan.sites, s.scan.footprints)
        if s.phase == "finished":
            self.status.setStyleSheet("")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
