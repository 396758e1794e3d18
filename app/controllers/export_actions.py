"""File > Export …: each export runs in the background through :mod:`app.services.exports`; success is a
status-bar line, failure one line in the window; the folder is remembered for the next export."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.services import exports
from app.workers import Task

if TYPE_CHECKING:
    from app.controllers.app_controller import AppController

log = logging.getLogger(__name__)

# kind -> (menu text, file-dialog filter, default file name)
KINDS: dict[str, tuple[str, str, str]] = {
    "layer_cog": ("Map layer as GeoTIFF (COG, the imagery's CRS)…", "Cloud-Optimized GeoTIFF (*.tif)", "{layer}.tif"),
    "layer_cog_wgs84": ("Map layer as GeoTIFF (COG, EPSG:4326)…", "Cloud-Optimized GeoTIFF (*.tif)",
                        "{layer}-wgs84.tif"),
    "layer_gpkg": ("Map layer as GeoPackage…", "GeoPackage (*.gpkg)", "{layer}.gpkg"),
    "map_png": ("Map as PNG (legend, scale bar)…", "PNG image (*.png)", "map-{layer}.png"),
    "query_csv": ("Best matches of the sound query as CSV…", "CSV (*.csv)", "query-matches.csv"),
    "tile_csv": ("Tile's recordings as CSV…", "CSV (*.csv)", "tile-{tile}-recordings.csv"),
    "tile_raven": ("Tile's recordings as Raven selection table…", "Raven selection table (*.txt)",
                   "tile-{tile}-recordings.selections.txt"),
    "indices_csv": ("Acoustic indices table as CSV…", "CSV (*.csv)", "indices.csv"),
    "spectrogram_png": ("Spectrogram as PNG…", "PNG image (*.png)", "spectrogram.png"),
}


class ExportActions:
    """Writes the exports; PNG bytes come from the window (Qt renders them there)."""

    def __init__(self, app: AppController) -> None:
        self.app = app
        self.last_written: Path | None = None

    def default_path(self, kind: str) -> Path:
        """Where the save dialog starts: the last export folder (else home) and a telling file name."""
        s = self.app.state
        tile = s.selection.tile
        name = KINDS[kind][2].format(layer=s.layers.current.key, tile=tile.tile_id if tile is not None else "none")
        remembered = self.app.settings.export_folder
        folder = Path(remembered) if isinstance(remembered, str) and remembered else Path.home()
        return folder / name

    def export(self, kind: str, path: str | Path, png: bytes | None = None,
               then: Callable[[bool, str], None] | None = None) -> Task | None:
        """Write export ``kind`` to ``path`` in the background. ``then(ok, message)`` runs afterwards."""
        s, path = self.app.state, Path(path)
        project = s.project.current
        if project is None and kind not in ("spectrogram_png", "map_png"):
            self.app.error("No atlas is open; open one with File > Open atlas…")
            return None
        atlas = project.atlas if project is not None else None
        layer, tile, result = s.layers.current, s.selection.tile, s.query.result
        jobs: dict[str, Callable[[], Any]] = {
            "layer_cog": lambda: exports.layer_cog(atlas, layer, path),
            "layer_cog_wgs84": lambda: exports.layer_cog(atlas, layer, path, crs="EPSG:4326"),
            "layer_gpkg": lambda: exports.layer_gpkg(atlas, layer, path),
            "map_png": lambda: exports.write_png(png or b"", path),
            "spectrogram_png": lambda: exports.write_png(png or b"", path),
            "query_csv": lambda: exports.query_matches_csv(result, path),
            "tile_csv": lambda: exports.tile_recordings_csv(atlas, tile, path),
            "tile_raven": lambda: exports.tile_recordings_raven(atlas, tile, path),
            "indices_csv": lambda: exports.indices_csv(atlas, path),
        }
        work = jobs[kind]

        def done(written: Path) -> None:
            self.last_written = Path(written)
            self.app.settings.export_folder = str(Path(written).resolve().parent)
            self.app.save_settings()
            self.app.state.tell("info", f"Exported {Path(written).name} to {Path(written).parent}")
            if then is not None:
                then(True, "")

        def failed(message: str) -> None:
            self.app.error(message)
            if then is not None:
                then(False, message)

        return self.app.runner.submit(f"Exporting {path.name}", lambda job: work(), on_success=done,
                                      on_error=failed, cancellable=False)
