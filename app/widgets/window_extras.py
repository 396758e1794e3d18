"""The main window's model, atlas, player, keyboard and help parts, kept out of ``main_window.py``.

:class:`WindowExtras` adds menus (File > New atlas from imagery…, Model, Audio, View's map keys and
coordinate order, Help > Documentation), the playback bars under the two spectrograms, the trained
model's offer box on the Train tab, and remembers the file dialogs' folders. It renders state and
forwards input to the controller, as the window does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox, QSplitter, QVBoxLayout, QWidget

from app.services.atlas_library import is_demo_atlas
from app.services.coords import format_place
from app.widgets.help_dialogs import DocumentationDialog
from app.widgets.model_offer import ModelOfferBox
from app.widgets.models_dialog import ModelsDialog
from app.widgets.new_atlas_dialog import NewAtlasDialog
from app.widgets.playback_bar import PlaybackBar
from app.widgets.spectrogram_view import SpectrogramView

if TYPE_CHECKING:
    from app.widgets.main_window import MainWindow

log = logging.getLogger(__name__)

ZOOM_STEP = 1.5
PAN_FRACTION = 0.2
MICROPHONE = "microphone"


def _attach_below(view: QWidget, bar: QWidget) -> QWidget:
    """Put ``bar`` under ``view`` where ``view`` sits in a splitter (or its layout)."""
    parent = view.parentWidget()
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    if isinstance(parent, QSplitter):
        # insertWidget hands the box to the splitter (PySide's replaceWidget would leave it Python-owned);
        # moving the view into the box then takes it out of the splitter.
        sizes = parent.sizes()
        parent.insertWidget(parent.indexOf(view), box)
        layout.addWidget(view, 1)
        parent.setSizes(sizes)
    else:
        layout.addWidget(view, 1)
    layout.addWidget(bar)
    view.show()
    return box


class WindowExtras:
    """Models, atlases, the player, keyboard shortcuts and help for ``window``."""

    def __init__(self, window: MainWindow) -> None:
        self.w = window
        self.state, self.c = window.state, window.controller
        settings = self.c.settings
        self.listen_bar, self.query_bar = PlaybackBar(), PlaybackBar()
        for bar in (self.listen_bar, self.query_bar):
            bar.set_gain(settings.playback_gain_db, settings.playback_normalise)
            bar.gain_changed.connect(self._gain_changed)
        _attach_below(window.listen.spectrogram, self.listen_bar)
        _attach_below(window.search.query_view, self.query_bar)
        window.search.query_view.window_combo.hide()  # a query's spectrogram is the model's own
        self.offer = ModelOfferBox()
        window.train.layout().insertWidget(3, self.offer)
        self.models_dialog: ModelsDialog | None = None
        self.new_atlas_dialog: NewAtlasDialog | None = None
        self.docs_dialog: DocumentationDialog | None = None
        self._build_menus()
        self._connect()
        self.set_coord_order(settings.coord_order, save=False)
        window.open_geotiff_action.setEnabled(True)

    # ------------------------------------------------------------------------------------ menus

    def _menu(self, title: str) -> QMenu:
        for action in self.w.menuBar().actions():
            if action.menu() is not None and action.text().replace("&", "") == title:
                return action.menu()
        raise LookupError(title)

    def _action(self, menu: QMenu, text: str, slot: Any, shortcuts: list[Any] | None = None,
                before: QAction | None = None) -> QAction:
        action = QAction(text, self.w)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.triggered.connect(slot)
        if before is not None:
            menu.insertAction(before, action)
        else:
            menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        w = self.w
        file_menu = self._menu("File")
        self.new_atlas_action = self._action(file_menu, "New atlas from imagery…", lambda: self.new_atlas(),
                                             ["Ctrl+N"], before=w.open_geotiff_action)
        help_action = next(a for a in w.menuBar().actions() if a.text().replace("&", "") == "Help")
        model_menu = QMenu("&Model", w)
        w.menuBar().insertMenu(help_action, model_menu)
        self.models_action = self._action(model_menu, "Models…", self.show_models, ["Ctrl+M"])
        self.demo_model_action = self._action(model_menu, "Back to the demo model", self.c.models.back_to_demo)
        audio_menu = QMenu("&Audio", w)
        w.menuBar().insertMenu(help_action, audio_menu)
        self.record_action = self._action(audio_menu, "Record / Stop", self.toggle_record, ["Space", "R"])
        self.play_action = self._action(audio_menu, "Play / Stop", self.toggle_play, ["P"])
        self.refresh_action = self._action(audio_menu, "Refresh devices",
                                           lambda: self.c.audio.refresh_devices(rescan=True), ["F5"])
        view_menu = self._menu("View")
        view_menu.addSeparator()
        self._action(view_menu, "Zoom in", lambda: self.zoom_map(ZOOM_STEP), ["+", "=", "Ctrl++"])
        self._action(view_menu, "Zoom out", lambda: self.zoom_map(1 / ZOOM_STEP), ["-", "Ctrl+-"])
        for text, key, dx, dy in (("Pan left", "Left", -1, 0), ("Pan right", "Right", 1, 0),
                                  ("Pan up", "Up", 0, 1), ("Pan down", "Down", 0, -1)):
            action = self._action(view_menu, text, lambda _=False, dx=dx, dy=dy: self.pan_map(dx, dy), [key])
            # Arrows belong to the map only while it has the focus (tables and fields keep theirs).
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            w.map.addAction(action)
        w.map.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        w.map.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        coords = view_menu.addMenu("Coordinates")
        group = QActionGroup(w)
        self.coord_actions: dict[str, QAction] = {}
        for order, text in (("latlon", "Latitude, longitude (55.68° N, 12.57° E)"),
                            ("lonlat", "Longitude, latitude (12.57° E, 55.68° N)")):
            action = QAction(text, w, checkable=True)
            action.triggered.connect(lambda _=False, o=order: self.set_coord_order(o))
            group.addAction(action)
            coords.addAction(action)
            self.coord_actions[order] = action
        help_menu = help_action.menu()
        first = help_menu.actions()[0] if help_menu.actions() else None
        self.docs_action = self._action(help_menu, "Documentation", self.show_documentation,
                                        [QKeySequence.StandardKey.HelpContents], before=first)

    def _connect(self) -> None:
        s, c, w = self.state, self.c, self.w
        self.listen_bar.play_clicked.connect(self.toggle_listen_play)
        self.query_bar.play_clicked.connect(self.toggle_query_play)
        w.listen.spectrogram.seek_requested.connect(lambda t: self.seek(w.listen.spectrogram, t))
        w.search.query_view.seek_requested.connect(lambda t: self.seek(w.search.query_view, t))
        w.listen.spectrogram.window_size_changed.connect(c.project.set_display_window)
        s.audio.position_changed.connect(self._render_position)
        s.audio.playing_changed.connect(self._render_playing)
        s.training.changed.connect(lambda: self.offer.render(s.training.offer))
        self.offer.accepted.connect(c.training.accept_offer)
        self.offer.declined.connect(c.training.decline_offer)
        s.project.changed.connect(self._project_changed)

    # ------------------------------------------------------------------------------- folders

    def folder(self, dialog: str) -> str:
        """The folder ``dialog`` last chose from ('' the first time)."""
        return self.c.settings.dialog_dirs.get(dialog, "")

    def remember(self, dialog: str, chosen: str | Path) -> None:
        self.c.settings.remember_dialog_dir(dialog, chosen)
        self.c.save_settings()

    # ------------------------------------------------------------------------------- models

    def show_models(self) -> ModelsDialog:
        if self.models_dialog is None:
            dialog = ModelsDialog(self.w)
            dialog.use_requested.connect(self.c.models.use)
            dialog.demo_requested.connect(self.c.models.back_to_demo)
            dialog.open_requested.connect(self.w._open_bundle_dialog)
            self.models_dialog = dialog
        self.models_dialog.render(self.c.models.models(), self.c.models.current_path())
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def _project_changed(self) -> None:
        # Nothing from the project just left may stay on screen (hover read-out, playheads, model list).
        self.w.open_geotiff_action.setEnabled(True)  # with no atlas open, the GeoTIFF starts a new one
        self.w.map.readout.setText(" ")
        self.w.map.last_hover_text = ""
        for view in (self.w.listen.spectrogram, self.w.search.query_view):
            view.set_playhead(None)
        if self.models_dialog is not None and self.models_dialog.isVisible():
            self.models_dialog.render(self.c.models.models(), self.c.models.current_path())

    # ------------------------------------------------------------------------------- atlases

    def new_atlas(self, images: list[str | Path] | None = None) -> NewAtlasDialog:
        """Open File > New atlas from imagery… (with ``images`` already added)."""
        dialog = NewAtlasDialog(self.c.models.models(), self.c.models.current_path(), self.folder("geotiff"),
                                self.w)
        for path in images or []:
            dialog.add_image(path)
        dialog.accepted.connect(lambda: self._build(dialog))
        self.new_atlas_dialog = dialog
        dialog.open()
        return dialog

    def _build(self, dialog: NewAtlasDialog) -> None:
        images, tile_m, bundle, name = dialog.answers()
        if images:
            self.remember("geotiff", images[0])
        self.c.project.new_atlas(images, tile_m, bundle, name)

    def ask_add_or_new(self, path: Path) -> str | None:
        """'add', 'new' or None (cancelled): where an opened GeoTIFF goes."""
        atlas = self.state.project.atlas_path
        box = QMessageBox(self.w)
        box.setWindowTitle("Open GeoTIFF")
        demo = atlas is not None and is_demo_atlas(atlas, self.c.context.data_dir)
        box.setText(f"Add {path.name} to the open atlas {Path(atlas).name}, or start a new atlas with it?"
                    + ("\n\nThe demo atlas itself is never changed: adding makes a copy in your atlases "
                       "folder and opens it." if demo else ""))
        add = box.addButton("Add to the open atlas", QMessageBox.ButtonRole.AcceptRole)
        new = box.addButton("New atlas…", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return "add" if clicked is add else "new" if clicked is new else None

    def open_geotiff(self, path: str | Path) -> None:
        """What File > Open GeoTIFF… does after the file dialog."""
        path = Path(path)
        self.remember("geotiff", path)
        choice = self.ask_add_or_new(path) if self.state.project.atlas_path is not None else "new"
        if choice == "add":
            self.c.project.add_geotiff(path)
        elif choice == "new":
            self.new_atlas([path])

    # -------------------------------------------------------------------------------- player

    def _gain_changed(self, gain_db: float, normalise: bool) -> None:
        for bar in (self.listen_bar, self.query_bar):
            bar.set_gain(gain_db, normalise)
        self.c.audio.set_gain(gain_db, normalise)

    def _listen_path(self) -> str | None:
        clip = self.state.selection.clip
        return str(clip.path) if clip is not None else None

    def _query_label(self) -> str | None:
        result = self.state.query.result
        return None if result is None else (MICROPHONE if result.source == MICROPHONE else str(result.source))

    def _view_playing(self) -> SpectrogramView | None:
        playing = self.state.audio.playing
        if playing is None:
            return None
        if playing == self._listen_path():
            return self.w.listen.spectrogram
        if playing == self._query_label():
            return self.w.search.query_view
        return None

    def play_listen(self, start_s: float = 0.0) -> None:
        path = self._listen_path()
        if path is not None:
            self.c.audio.play(path, start_s)

    def play_query(self, start_s: float = 0.0) -> None:
        label = self._query_label()
        if label == MICROPHONE:
            recording = self.c.audio.last_recording
            if recording is not None:
                self.c.audio.play_samples(recording[0], recording[1], MICROPHONE, start_s)
        elif label is not None:
            self.c.audio.play(label, start_s)

    def toggle_listen_play(self) -> None:
        if self.state.audio.playing is not None and self.state.audio.playing == self._listen_path():
            self.c.audio.stop_playback()
        else:
            self.play_listen(self.w.listen.spectrogram.playhead_seconds or 0.0)

    def toggle_query_play(self) -> None:
        if self.state.audio.playing is not None and self.state.audio.playing == self._query_label():
            self.c.audio.stop_playback()
        else:
            self.play_query(self.w.search.query_view.playhead_seconds or 0.0)

    def toggle_play(self) -> None:
        """P: play or stop the clip of the tab in front."""
        if self.state.audio.playing is not None:
            self.c.audio.stop_playback()
        elif self.w.tabs.currentWidget() is self.w.search:
            self.play_query()
        else:
            self.play_listen()

    def seek(self, view: SpectrogramView, seconds: float) -> None:
        """A click on a spectrogram: move the playhead there (and play from there if it was not playing)."""
        view.set_playhead(seconds)
        if not self.state.audio.output_available:
            return  # no speakers: the playhead moves, nothing plays (the Play button says why)
        if self._view_playing() is view:
            self.c.audio.seek(seconds)
        elif view is self.w.listen.spectrogram:
            self.play_listen(seconds)
        else:
            self.play_query(seconds)

    def _render_position(self, seconds: float) -> None:
        view = self._view_playing()
        if view is None:
            return
        view.set_playhead(seconds)
        bar = self.listen_bar if view is self.w.listen.spectrogram else self.query_bar
        bar.set_position(seconds, self.state.audio.duration_s)

    def _render_playing(self, path: str | None) -> None:
        self.listen_bar.set_playing(path is not None and path == self._listen_path())
        self.query_bar.set_playing(path is not None and path == self._query_label())

    # -------------------------------------------------------------------------- record, keys

    def toggle_record(self) -> None:
        """Space or R: start recording, or stop (and search)."""
        if self.state.audio.recording:
            self.w.stop_recording()
        else:
            self.w.start_recording()

    def zoom_map(self, factor: float) -> None:
        """Zoom the map in (factor > 1) or out about its centre."""
        self.w.map.view.scaleBy((1 / factor, 1 / factor))

    def pan_map(self, dx: int, dy: int) -> None:
        """Move the map by a fifth of its view (dx: +1 east, dy: +1 north)."""
        (x0, x1), (y0, y1) = self.w.map.view.viewRange()
        self.w.map.view.translateBy(x=dx * PAN_FRACTION * (x1 - x0), y=dy * PAN_FRACTION * (y1 - y0))

    def set_coord_order(self, order: str, save: bool = True) -> None:
        """Write places as lat, lon (default) or lon, lat everywhere."""
        order = order if order in self.coord_actions else "latlon"
        self.coord_actions[order].setChecked(True)
        w = self.w
        w.map.coord_order = w.listen.coord_order = w.search.gallery.coord_order = order
        tile = self.state.selection.tile
        if tile is not None:
            w.listen.header.setText(f"<b>Tile {tile.tile_id}</b> &nbsp; {format_place(tile.lat, tile.lon, order, 5)}")
        if self.state.query.result is not None:
            w._render_query(self.state.query.result)
        if save and order != self.c.settings.coord_order:
            self.c.settings.coord_order = order
            self.c.save_settings()

    # ---------------------------------------------------------------------------------- help

    def show_documentation(self) -> DocumentationDialog:
        if self.docs_dialog is None:
            self.docs_dialog = DocumentationDialog(self.w)
        self.docs_dialog.show()
        self.docs_dialog.raise_()
        return self.docs_dialog


__all__ = ["WindowExtras"]
