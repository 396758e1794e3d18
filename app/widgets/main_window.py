"""The main window: the map on the left; Listen, Sound search and Train tabs on the right; a status bar.

It renders the state and forwards user input to the controller; it computes nothing itself.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QProgressDialog,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.controllers import AppController
from app.services.map_layout import layout_atlas
from app.services.map_overviews import SourceOverviews
from app.services.project import resources_dir
from app.services.training import available_presets
from app.state import AppState, Message
from app.state.layer_state import IMAGERY, SIMILARITY, MapLayer
from app.widgets.export_menu import ExportMenu
from app.widgets.help_dialogs import show_about
from app.widgets.layers_control import NO_VALUE_RGBA, LayerControl, NoValueKey
from app.widgets.map_view import MapView
from app.widgets.message_banner import MessageBanner
from app.widgets.record_panel import RecordPanel
from app.widgets.recordings_panel import RecordingsPanel
from app.widgets.status_bar import StatusBar
from app.widgets.tile_indices import TileIndicesPanel
from app.widgets.training_panel import TrainingPanel
from app.widgets.window_extras import WindowExtras

log = logging.getLogger(__name__)

AUDIO_FILTER = "Audio (*.wav *.flac *.ogg *.mp3 *.aif *.aiff);;All files (*)"
GEOTIFF_FILTER = "GeoTIFF (*.tif *.tiff);;All files (*)"
DEFAULT_SIZE = (1440, 900)
MONITOR_INTERVAL_MS = 40


class MainWindow(QMainWindow):
    """Soundscape Mapper's one window."""

    def __init__(self, state: AppState, controller: AppController) -> None:
        super().__init__()
        self.state, self.controller = state, controller
        self.setWindowTitle("Soundscape Mapper")
        icon = resources_dir() / "icons" / "soundscape.svg"
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self.resize(*DEFAULT_SIZE)

        self.map = MapView()
        self.banner = MessageBanner()
        self.listen = RecordingsPanel()
        self.search = RecordPanel()
        self.train = TrainingPanel(available_presets())
        self.tabs = QTabWidget()
        self.tabs.addTab(self.listen, "Listen")
        self.tabs.addTab(self.search, "Sound search")
        self.tabs.addTab(self.train, "Train")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 6, 0, 6)
        left_layout.addWidget(self.banner)
        self.layers_control = LayerControl()
        left_layout.addWidget(self.layers_control)
        left_layout.addWidget(self.map, 1)
        self.no_value_key = NoValueKey(self.map.canvas)
        self.no_value_key.move(6, 6)
        self.tile_panel = TileIndicesPanel()
        self.listen.add_top_pane(self.tile_panel)  # resizable against the recording lists
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([860, 560])
        self.setCentralWidget(splitter)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self._progress_dialog: QProgressDialog | None = None
        self._dialog_task: int | None = None
        self._play_timer = QTimer(self)
        self._play_timer.setInterval(MONITOR_INTERVAL_MS)  # the playhead moves 25 times a second
        self._play_timer.timeout.connect(controller.audio.poll_playback)
        self._monitor_timer = QTimer(self)  # the live monitor of a recording: 25 ticks a second
        self._monitor_timer.setInterval(MONITOR_INTERVAL_MS)
        self._monitor_timer.timeout.connect(controller.audio.poll_recording)
        self._build_menus()
        self._connect()
        self.extras = WindowExtras(self)  # models, new atlas, player, keyboard, help
        s = controller.settings
        self.search.max_seconds.setValue(s.record_max_seconds)
        self.train.set_values(s.train_data, s.train_preset, s.train_epochs)
        if s.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(s.window_geometry.encode()))
        self._render_project()
        self._render_audio()
        self.train.render(state.training)
        self.train.render_engine(state.engine)

    # ------------------------------------------------------------------------------------ menus

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_atlas_action = self._action(file_menu, "Open atlas…", self._open_atlas_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Recent atlases")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        self.open_geotiff_action = self._action(file_menu, "Open GeoTIFF…", self._open_geotiff_dialog, "Ctrl+G")
        self.open_audio_action = self._action(file_menu, "Open audio file…", self._open_audio_dialog, "Ctrl+Shift+O")
        self.open_bundle_action = self._action(file_menu, "Open model bundle…", self._open_bundle_dialog)
        self.new_project_action = self._action(file_menu, "New project from recordings…", self.open_new_project)
        file_menu.addSeparator()
        self.export_menu = ExportMenu(self, file_menu)
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "Whole atlas", self.map.show_all, "Ctrl+0")
        self._action(view_menu, "Clear heat map", lambda: self.state.query.set_result(None))
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "About Soundscape Mapper", self._about)

    def _action(self, menu: Any, text: str, slot: Any, shortcut: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.controller.settings.recent_atlases:
            self.recent_menu.addAction(path, lambda p=path: self.controller.project.open_atlas(p))
        if not self.controller.settings.recent_atlases:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _open_atlas_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open atlas folder", self.extras.folder("atlas"))
        if folder:
            self.extras.remember("atlas", Path(folder).parent)
            self.controller.project.open_atlas(folder)

    def _open_geotiff_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open GeoTIFF imagery", self.extras.folder("geotiff"),
                                              GEOTIFF_FILTER)
        if path:
            self.extras.open_geotiff(path)  # asks: add to the open atlas, or a new atlas

    def _open_audio_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Search the map with an audio file", self.extras.folder("audio"),
                                              AUDIO_FILTER)
        if path:
            self.extras.remember("audio", path)
            self.open_audio_file(path)

    def _open_bundle_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open model bundle folder", self.extras.folder("bundle"))
        if folder:
            self.extras.remember("bundle", Path(folder).parent)
            self.controller.models.use(folder)  # joins the model list

    def open_audio_file(self, path: str | Path) -> None:
        """Search the map with an audio file (what File > Open audio file… does after the dialog)."""
        self.tabs.setCurrentWidget(self.search)
        self.controller.project.query_file(path)

    def open_new_project(self) -> Any:
        """File > New project from recordings… (the dialog is kept, so a running pipeline can be seen again)."""
        from app.widgets.new_project_dialog import NewProjectDialog

        if getattr(self, "new_project_dialog", None) is None:
            self.new_project_dialog = NewProjectDialog(self.controller.new_project, self)
            self.new_project_dialog.install_requested.connect(lambda: self.tabs.setCurrentWidget(self.train))
        self.new_project_dialog.show()
        self.new_project_dialog.raise_()
        return self.new_project_dialog

    def _about(self) -> None:
        show_about(self)  # with the installed version

    # ---------------------------------------------------------------------------------- wiring

    def _connect(self) -> None:
        s, c = self.state, self.controller
        s.project.changed.connect(self._render_project)
        s.selection.changed.connect(self._render_selection)
        s.selection.clip_changed.connect(
            lambda clip: self.listen.show_clip(clip, s.selection.clip_log_mel, s.selection.clip_seconds))
        s.query.changed.connect(self._render_query)
        s.query.centre_requested.connect(lambda lon, lat, index: self.map.centre_on(lon, lat))
        s.audio.changed.connect(self._render_audio)
        s.audio.playing_changed.connect(self._render_playing)
        s.tasks.changed.connect(self._render_tasks)
        s.training.changed.connect(lambda: self.train.render(s.training))
        s.engine.changed.connect(lambda: self.train.render_engine(s.engine))
        s.message.connect(self._show_message)
        s.layers.changed.connect(self._render_layer)
        s.layers.choices_changed.connect(lambda: self.layers_control.render_choices(s.layers.choices, s.layers.note))
        s.layers.tile_changed.connect(self.tile_panel.render)
        self.layers_control.chosen.connect(c.layers.choose)
        self.layers_control.render_choices(s.layers.choices, s.layers.note)

        self.map.clicked.connect(self._map_clicked)
        self.listen.play_requested.connect(self._toggle_play)
        self.listen.clip_requested.connect(c.project.show_clip)
        self.listen.hours_changed.connect(c.project.set_hour_filter)
        self.search.record_clicked.connect(self.start_recording)
        self.search.stop_clicked.connect(self.stop_recording)
        self.search.open_file_clicked.connect(self._open_audio_dialog)
        self.search.device_chosen.connect(c.audio.choose_input)
        self.search.tile_clicked.connect(c.project.centre_on_tile)
        self.search.max_seconds.valueChanged.connect(self._max_seconds_changed)
        self.train.start_clicked.connect(lambda d, p, e: c.training.start(d, p, e))
        self.train.cancel_clicked.connect(c.training.cancel)
        self.train.engine_box.size_clicked.connect(c.engine.check_size)
        self.train.engine_box.install_clicked.connect(c.engine.install)
        self.train.engine_box.cancel_clicked.connect(c.engine.cancel)
        self.status.cancel_clicked.connect(c.runner.cancel)

    def _map_clicked(self, lon: float, lat: float) -> None:
        if self.controller.project.select_at(lon, lat):
            self.tabs.setCurrentWidget(self.listen)

    def _toggle_play(self, match: Any) -> None:
        audio = self.controller.audio
        if self.state.audio.playing is not None and str(self.state.audio.playing) == str(match.path):
            audio.stop_playback()
        else:
            audio.play(str(match.path))

    def start_recording(self) -> None:
        """What the Record button does (also used by ``--record-seconds``)."""
        session = self.controller.audio.start_recording(self.search.max_seconds.value())
        if session is not None:
            self.tabs.setCurrentWidget(self.search)

    def stop_recording(self) -> None:
        """What the Stop button does."""
        self.controller.audio.stop_recording(query=True)

    def _max_seconds_changed(self, value: float) -> None:
        self.controller.settings.record_max_seconds = float(value)

    # -------------------------------------------------------------------------------- rendering

    def _render_project(self) -> None:
        p = self.state.project
        self.status.set_model(f"model: {p.bundle.path.name}" if p.bundle is not None else "model: none",
                              p.bundle.describe() if p.bundle is not None else "")
        if p.atlas is None:
            self.status.set_atlas("atlas: none")
            self.map.clear()
            self.open_geotiff_action.setEnabled(False)
            return
        atlas = p.atlas
        n_tiles, n_rec = len(atlas.tiles.ids), len(atlas.recordings.ids)
        self.status.set_atlas(f"atlas: {Path(p.atlas_path).name} ({n_tiles:,} tiles, {n_rec:,} recordings)",
                              str(p.atlas_path))
        # Overviews are decoded in the background as views need them (thousands of sources open at once).
        self.map.set_atlas(layout_atlas(atlas), [], (atlas.recordings.lon, atlas.recordings.lat),
                           atlas.thumbnail, self.controller.project.hover_text, SourceOverviews.of_atlas(atlas))
        self.open_geotiff_action.setEnabled(True)
        self.listen.show_selection(None)
        if p.bundle is not None:
            self.listen.spectrogram.configure(p.bundle.front_end)
            self.search.query_view.configure(p.bundle.front_end)
            self.search.live.configure(p.bundle.front_end)

    def _render_selection(self, tile: Any) -> None:
        self.listen.show_selection(tile)
        self.map.set_selected(None if tile is None else tile.index)

    def _render_query(self, result: Any) -> None:
        p = self.state.project
        self.search.show_result(result, p.atlas.thumbnail if p.atlas is not None else (lambda i: None),
                                p.bundle.front_end if p.bundle is not None else None)

    def _render_layer(self, layer: MapLayer) -> None:
        """The chosen layer over the imagery: its colours, colour bar with units, and "no value" tiles."""
        index_layer = layer.key not in (IMAGERY, SIMILARITY)
        self.map.set_heat(layer.values, layer.levels if layer.values is not None else None, layer.legend_title,
                          NO_VALUE_RGBA if index_layer else None)
        self.layers_control.render_current(layer)
        self.no_value_key.render_layer(layer)

    def _render_audio(self) -> None:
        a = self.state.audio
        if a.session is not None and self.search.session is not a.session:
            self.search.show_recording(a.session)
            self._monitor_timer.start()
        elif a.session is None and self.search.session is not None:
            self._monitor_timer.stop()
            self.search.end_recording()
        self.search.set_devices(a.input_devices, a.input_device, a.input_available, a.reason)
        self.listen.set_play_enabled(a.output_available, a.reason)
        if a.input_available and a.input_device is not None:
            self.status.set_audio(f"audio: {a.input_device.name}", f"input {a.input_device.label}; "
                                  f"output {a.output_name or 'none'}")
        else:
            self.status.set_audio("audio: unavailable", a.reason)

    def _render_playing(self, path: str | None) -> None:
        self.listen.set_playing(path)
        if path is None:
            self._play_timer.stop()
        else:
            self._play_timer.start()

    def _render_tasks(self) -> None:
        tasks = self.state.tasks
        self.status.show_tasks(tasks)
        dialog_tasks = [t for t in tasks.tasks.values() if t.dialog]
        if dialog_tasks:
            task = dialog_tasks[0]
            if self._progress_dialog is None:
                dialog = QProgressDialog(task.name, "Cancel", 0, 1000, self)
                dialog.setWindowTitle("Soundscape Mapper")
                dialog.setWindowModality(Qt.WindowModality.WindowModal)
                dialog.setMinimumDuration(0)
                dialog.setAutoClose(False)
                dialog.setAutoReset(False)
                dialog.canceled.connect(lambda: self.controller.runner.cancel(self._dialog_task or -1))
                self._progress_dialog = dialog
            self._dialog_task = task.task_id
            self._progress_dialog.setLabelText(f"{task.name}\n{task.message}" if task.message else task.name)
            if task.fraction is None:
                self._progress_dialog.setRange(0, 0)
            else:
                self._progress_dialog.setRange(0, 1000)
                self._progress_dialog.setValue(int(task.fraction * 1000))
            self._progress_dialog.show()
        elif self._progress_dialog is not None:
            dialog, self._progress_dialog, self._dialog_task = self._progress_dialog, None, None
            dialog.hide()
            dialog.deleteLater()

    def _show_message(self, message: Message) -> None:
        if message.level == "info":
            self.status.showMessage(message.text, 8000)
            if self.banner.level == "info":
                self.banner.hide()
        else:
            self.banner.show_message(message.level, message.text)

    # ---------------------------------------------------------------------------------- closing

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self._play_timer.stop()
        self._monitor_timer.stop()
        self.map.stop_timers()
        self.controller.settings.window_geometry = bytes(self.saveGeometry().toBase64()).decode()
        self.controller.shutdown()
        if self._progress_dialog is not None:
            self._progress_dialog.hide()
            self._progress_dialog.deleteLater()
            self._progress_dialog = None
        super().closeEvent(event)

