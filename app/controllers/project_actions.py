"""Opening atlases and bundles, the first-launch demo, tile selection, sound queries and imagery."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.services import atlas_edits, atlas_library, demo, search
from app.services.coords import format_place
from app.services.project import (
    Project,
    known_bundles,
    load_model,
    open_project,
    shipped_bundle_path,
    warm_up,
)
from app.services.spectrogram import file_spectrogram
from app.workers import Task

if TYPE_CHECKING:
    from app.controllers.app_controller import AppController
    from app.state import AppState

log = logging.getLogger(__name__)


class ProjectActions:
    """Actions on the project (bundle + atlas) and the two questions asked of it."""

    def __init__(self, app: AppController) -> None:
        self.app = app
        self._query_task: Task | None = None
        self._clip_task: Task | None = None
        self._atlas_task: Task | None = None
        self.display_n_fft: int | None = None  # the Listen spectrogram's STFT window (None: the model's)

    @property
    def state(self) -> AppState:
        return self.app.state

    @property
    def current(self) -> Project | None:
        """The open project (the state's one copy)."""
        return self.state.project.current

    # ------------------------------------------------------------------------------------ launch

    def launch(self, atlas: str | Path | None = None, bundle: str | Path | None = None) -> None:
        """What the app opens at start: ``atlas`` if given, else the last atlas, else the demo."""
        if atlas is not None:
            self.open_atlas(atlas, bundle)
        elif self.app.settings.last_atlas and Path(self.app.settings.last_atlas).exists():
            self.open_atlas(self.app.settings.last_atlas, bundle or self.app.settings.bundle)
        else:
            self.bootstrap_demo()

    def _bundle_candidates(self, preferred: str | Path | None) -> list[Path]:
        extra: list[str | Path | None] = [preferred, self.state.project.bundle_path, self.app.settings.bundle,
                                          *self.app.context.extra_bundles]
        return known_bundles(self.app.context.data_dir, extra)

    def open_atlas(self, path: str | Path, bundle: str | Path | None = None,
                   then: Callable[[bool, str], None] | None = None) -> Task:
        """Open an atlas in the background with a bundle it was built with; on failure the current
        project stays loaded and the window shows why. ``then(ok, message)`` runs afterwards."""
        path = Path(path)
        candidates = self._bundle_candidates(bundle)
        if self._atlas_task is not None and self._atlas_task.running:
            self._atlas_task.cancel()

        def fail(message: str) -> None:
            if not path.exists():
                self.app.settings.forget_atlas(path)
                self.app.save_settings()
            self.app.error(message)
            if then is not None:
                then(False, message)

        def opened(project: Project) -> None:
            self._set_project(project)
            if then is not None:
                then(True, "")

        self._atlas_task = self.app.runner.submit(
            f"Opening {path.name}", lambda job: self._open(path, candidates),
            on_success=opened, on_error=fail, cancellable=False)
        return self._atlas_task

    def _open(self, path: Path, candidates: list[Path]) -> Project:
        demo.upgrade_demo_atlas(path, self.app.context.data_dir)  # a demo atlas from before the shipped indices
        from engine.atlas.tile_index import tile_index_of

        project = open_project(path, candidates)
        # Here, off the window's thread: the stored tile index is read in milliseconds, but an atlas built
        # before it existed has one computed (seconds at millions of tiles) and the map must not freeze.
        tile_index_of(project.atlas)
        return project

    def _set_project(self, project: Project) -> None:
        self.state.selection.set_tile(None)
        self.state.query.set_result(None)
        training = self.state.training
        if not training.running and training.offer is None and training.phase != "idle":
            training.set_phase("idle")  # "Now using the new model …" belongs to the project just left
        self.state.project.set_project(project)
        self.app.settings.remember_atlas(project.atlas_path, project.bundle_path)
        self.app.save_settings()
        n_tiles, n_rec = len(project.atlas.tiles.ids), len(project.atlas.recordings.ids)
        self.state.tell("info", f"Opened {project.atlas_path.name}: {n_tiles:,} tiles, {n_rec:,} recordings")
        self.app.runner.submit("Preparing the model", lambda job: warm_up(project), cancellable=False,
                               on_error=lambda message: log.warning("warm-up failed: %s", message))

    def open_bundle(self, path: str | Path, then: Callable[[bool, str], None] | None = None) -> Task:
        """Switch to another model bundle: the atlas is re-embedded with it in the background."""
        path = Path(path)

        def loaded(result: tuple[Any, Any]) -> None:
            bundle, encoders = result
            if self.state.project.atlas_path is None:
                self.state.project.set_bundle(bundle, path, encoders)
                self.app.settings.bundle = str(path.resolve())
                self.app.save_settings()
                if then is not None:
                    then(True, "")
                return
            self.reembed(path, then)

        def failed(message: str) -> None:
            self.app.error(message)
            if then is not None:
                then(False, message)

        return self.app.runner.submit(f"Loading {path.name}", lambda job: load_model(path), on_success=loaded,
                                      on_error=failed, cancellable=False)

    def reembed(self, bundle_path: Path, then: Callable[[bool, str], None] | None = None) -> Task | None:
        """Re-embed the current atlas with ``bundle_path`` (resumable), then reopen it with that bundle.
        ``then(ok, message)`` runs at the end (also after a failure or a cancel)."""
        atlas_path = self.state.project.atlas_path
        if atlas_path is None:
            return None

        def failed(message: str) -> None:
            self.app.error(message)
            if then is not None:
                then(False, message)

        def cancelled() -> None:
            message = "Re-embedding paused; it resumes where it stopped"
            self.state.tell("info", message)
            if then is not None:
                then(False, message)

        data_dir = self.app.context.data_dir

        def work(job: Any) -> Path:
            target = atlas_path
            if atlas_library.is_demo_atlas(atlas_path, data_dir):  # the demo atlas is never changed
                target = atlas_library.copy_for_editing(atlas_path, data_dir)
            return atlas_edits.reembed(target, bundle_path, job)

        return self.app.runner.submit(
            "Re-embedding the atlas", work, on_success=lambda p: self.open_atlas(p, bundle_path, then),
            on_error=failed, on_cancelled=cancelled)

    # -------------------------------------------------------------------------------------- demo

    def bootstrap_demo(self) -> None:
        """First launch: generate the demo world (progress dialog), then build its atlas with the
        shipped bundle in the background, then open it."""
        paths = demo.DemoPaths(self.app.context.data_dir)
        if demo.world_ready(paths.world):
            self._build_demo_atlas(paths)
            return
        ctx = self.app.context

        self.app.runner.submit(
            "Generating the demo world",
            lambda job: demo.generate_demo_world(paths, ctx.demo_size, job, ctx.demo_workers),
            on_success=lambda _: self._build_demo_atlas(paths), on_error=self.app.error,
            on_cancelled=lambda: self.state.tell("info", "Demo not generated; open an atlas with File > Open atlas…"),
            dialog=True)

    def _build_demo_atlas(self, paths: demo.DemoPaths) -> None:
        """Build (or finish, or just check: a complete atlas is left as it is) the demo atlas, then open it."""
        bundle_path = self.app.context.demo_bundle or shipped_bundle_path()

        self.app.runner.submit("Building the demo atlas",
                               lambda job: atlas_edits.build_demo_atlas(paths, bundle_path, job),
                               on_success=lambda p: self.open_atlas(p, bundle_path), on_error=self.app.error,
                               on_cancelled=lambda: self.state.tell(
                                   "info", "Demo atlas paused; it resumes at the next launch"))

    # --------------------------------------------------------------------------------- selection

    def select_at(self, lon: float, lat: float) -> bool:
        """Select the tile under (lon, lat); it is fast (no worker). Returns False if no tile is there."""
        if self.current is None:
            return False
        selection = search.select_tile(self.current, lon, lat, hours=self.state.selection.hours)
        if selection is None:
            return False
        self.state.selection.set_tile(selection)
        if selection.best:
            self.show_clip(selection.best[0])
        return True

    def select_tile(self, index: int) -> None:
        """Select tile ``index`` (e.g. from the gallery)."""
        if self.current is None:
            return
        selection = search.tile_selection(self.current, index, hours=self.state.selection.hours)
        self.state.selection.set_tile(selection)
        if selection.best:
            self.show_clip(selection.best[0])

    def set_hour_filter(self, hours: tuple[float, float] | None) -> None:
        """Limit the Listen tab's recordings to a local hour-of-day range (None: all); the selected tile's
        lists are asked again."""
        self.state.selection.hours = hours
        tile = self.state.selection.tile
        if tile is not None and self.current is not None:
            self.select_tile(tile.index)

    def hover_text(self, lon: float, lat: float) -> str | None:
        """The map tooltip: tile id, lon/lat and best recording of the tile under the pointer."""
        if self.current is None:
            return None
        index = search.tile_at(self.current, lon, lat)
        if index is None:
            return None
        tiles = self.current.atlas.tiles
        best = search.best_recording_title(self.current, int(index))
        place = format_place(float(tiles.lat[index]), float(tiles.lon[index]), self.app.settings.coord_order, 5)
        text = f"tile {int(tiles.ids[index])}  ·  {place}"
        result = self.state.query.result
        if result is not None:
            text += f"  ·  similarity {float(result.scores[index]):.3f}"
        return text + (f"\nbest recording: {best}" if best else "")

    def show_clip(self, match: Any) -> None:
        """Compute and show the spectrogram of a recording (in the background)."""
        if self.current is None:
            return
        if self._clip_task is not None and self._clip_task.running:
            self._clip_task.cancel()
        self.state.selection.set_clip(match, None, 0.0)
        cfg = self.current.bundle.front_end
        if self.display_n_fft and self.display_n_fft >= cfg.hop_length:
            cfg = dataclasses.replace(cfg, n_fft=int(self.display_n_fft))
        self._clip_task = self.app.runner.submit(
            "Spectrogram", lambda job: file_spectrogram(match.path, cfg, job=job),
            on_success=lambda r: self._clip_ready(match, r), on_error=self.app.error)

    def set_display_window(self, n_fft: int) -> None:
        """Draw clips with an ``n_fft``-sample STFT window (display only; the model's input is unchanged)."""
        self.display_n_fft = int(n_fft)
        if self.state.selection.clip is not None:
            self.show_clip(self.state.selection.clip)

    def _clip_ready(self, match: Any, result: tuple[Any, float]) -> None:
        if self.state.selection.clip is match:
            self.state.selection.set_clip(match, result[0], result[1])

    # ------------------------------------------------------------------------------ sound query

    def query_file(self, path: str | Path) -> Task | None:
        """Score every tile against an audio file (in the background)."""
        if self.current is None:
            self.app.error("No atlas is open; open one with File > Open atlas…")
            return None
        project = self.current
        return self._start_query(f"Searching with {Path(path).name}",
                                 lambda job: search.query_audio_file(project, path, job=job))

    def query_samples(self, samples: Any, rate: int) -> Task | None:
        """Score every tile against a microphone recording (in the background)."""
        if self.current is None:
            self.app.error("No atlas is open; open one with File > Open atlas…")
            return None
        project = self.current
        return self._start_query("Searching with the recording",
                                 lambda job: search.query_samples(project, samples, rate, job=job))

    def _start_query(self, name: str, fn: Any) -> Task:
        if self._query_task is not None and self._query_task.running:
            self._query_task.cancel()
        self._query_task = self.app.runner.submit(name, fn, on_success=self._query_done, on_error=self.app.error)
        return self._query_task

    def _query_done(self, result: Any) -> None:
        self.state.query.set_result(result)
        name = "The recording" if result.source == "microphone" else Path(result.source).name
        warnings = result.warnings
        if warnings:  # silent: no search was made; clipped, quiet, DC: the search was made, with a caveat
            self.state.tell("warning", f"{name}: " + "; ".join(warnings))
        if result.top:
            best = result.top[0]
            place = format_place(best.lat, best.lon, self.app.settings.coord_order)
            text = (f"Best match: tile {best.id} at {place} "
                    f"(similarity {best.score:.3f})")
            if warnings:
                log.info("%s", text)
            else:
                self.state.tell("info", text)

    def centre_on_tile(self, index: int) -> None:
        """Centre the map on tile ``index`` and select it (a gallery thumbnail was clicked)."""
        if self.current is None:
            return
        tiles = self.current.atlas.tiles
        self.state.query.request_centre(float(tiles.lon[index]), float(tiles.lat[index]), index)
        self.select_tile(index)

    # ---------------------------------------------------------------------------------- imagery

    def add_geotiff(self, path: str | Path) -> Task | None:
        """Tile and embed a GeoTIFF into the open atlas (in the background, resumable). The demo atlas is
        copied into the user's atlases first and the copy opened (the demo itself never changes)."""
        if self.current is None:
            self.app.error("No atlas is open; open one with File > Open atlas… before adding imagery")
            return None
        project, path = self.current, Path(path)
        data_dir = self.app.context.data_dir
        target = [project.atlas_path]  # the atlas being changed (a copy of the demo atlas)

        def work(job: Any) -> Path:
            if atlas_library.is_demo_atlas(project.atlas_path, data_dir):
                target[0] = atlas_library.copy_for_editing(project.atlas_path, data_dir)
            return atlas_edits.add_imagery(project, path, job, target[0])

        def failed(message: str) -> None:
            self.app.error(message)
            if atlas_edits.tile_count(target[0]) != len(project.atlas.tiles.ids):
                self.open_atlas(target[0], project.bundle_path)  # what was embedded joins the map
            elif target[0] != project.atlas_path:
                shutil.rmtree(target[0], ignore_errors=True)  # an unchanged copy of the demo atlas

        def cancelled() -> None:
            self.state.tell("info", f"Stopped adding {path.name}; the tiles already embedded are kept")
            self.open_atlas(target[0], project.bundle_path)

        return self.app.runner.submit(
            f"Adding {path.name}", work, on_success=lambda p: self.open_atlas(p, project.bundle_path),
            on_error=failed, on_cancelled=cancelled)

    def new_atlas(self, images: list[str | Path], tile_size_m: float, bundle_path: str | Path,
                  name: str = "atlas") -> Task | None:
        """Build a new atlas in the user's atlases folder from ``images`` with ``bundle_path``, then open it."""
        if not images:
            self.app.error("New atlas: no imagery chosen; add at least one GeoTIFF")
            return None
        out = atlas_library.unused_folder(atlas_library.atlases_dir(self.app.context.data_dir), name)
        bundle, files = Path(bundle_path), [Path(p) for p in images]

        def cancelled() -> None:
            self.state.tell("info", f"Stopped building {out.name}; File > Open atlas… resumes it")

        return self.app.runner.submit(
            f"Building {out.name}", lambda job: atlas_library.build_new_atlas(out, bundle, files, tile_size_m, job),
            on_success=lambda p: self.open_atlas(p, bundle), on_error=self.app.error, on_cancelled=cancelled)
