"""File > Export …: what the app writes, through the engine's torch-free ``engine.gis`` (every file written
to a temporary file beside the target and renamed at the end, so a read-only or full folder gives one
line and leaves nothing half-written). Qt-free: the PNGs arrive here as bytes the widgets rendered."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from app.state.layer_state import MapLayer
from engine.gis.output import ExportError, atomic_output

log = logging.getLogger(__name__)

QUERY_COLUMNS = ["rank", "tile", "lon", "lat", "score", "distance"]
INDICES_HEAD = ["id", "title", "path", "longitude", "latitude", "hour"]


def _need_values(layer: MapLayer, path: Path) -> np.ndarray:
    if layer.values is None:
        raise ExportError(path, "the map shows the imagery only", "choose a layer with values (Layers) first")
    return layer.values


def layer_cog(atlas: Any, layer: MapLayer, path: str | Path, crs: str | None = None) -> Path:
    """The layer as a Cloud-Optimized GeoTIFF, one pixel per tile in the imagery's CRS (``crs`` None; one
    source) or reprojected (``"EPSG:4326"``). An atlas of several sources goes to EPSG:4326."""
    from engine.gis.raster import layer_raster, write_cog

    path = Path(path)
    values = _need_values(layer, path)
    if crs is None and len(np.unique(np.asarray(atlas.tiles.source))) > 1:
        crs = "EPSG:4326"
    return write_cog(path, layer_raster(atlas, values, crs=crs), name=layer.key, description=layer.legend_title)


def layer_gpkg(atlas: Any, layer: MapLayer, path: str | Path) -> Path:
    """The tiles as polygons (EPSG:4326) with the layer's value (and uncertainty) per tile; NaN is null."""
    from engine.gis.vector import write_tiles_gpkg

    path = Path(path)
    columns = {layer.key: _need_values(layer, path)}
    if layer.uncertainty is not None:
        columns[f"{layer.key}_uncertainty"] = layer.uncertainty
    return write_tiles_gpkg(path, atlas, columns)


def query_matches_csv(result: Any, path: str | Path) -> Path:
    """The last sound query's best tiles (rank, tile, lon, lat, score, distance)."""
    from engine.gis.tables import write_rows

    path = Path(path)
    if result is None or not result.top:
        raise ExportError(path, "no sound query with matches yet", "search with a sound first (Sound search tab)")
    return write_rows(path, QUERY_COLUMNS, [[r, t.id, t.lon, t.lat, t.score, t.distance]
                                            for r, t in enumerate(result.top, 1)])


def _durations(atlas: Any) -> dict[str, float]:
    r = atlas.recordings
    return {str(i): float(d) for i, d in zip(r.ids, r.durations, strict=True)}


def _nyquist(matches: list[Any]) -> dict[str, float]:
    """Each recording's Nyquist frequency (the top of a whole-band Raven selection); left out if unreadable."""
    from engine.audio import probe_audio
    from engine.errors import UserInputError

    out = {}
    for m in matches:
        try:
            out[str(m.id)] = probe_audio(m.path).sample_rate / 2
        except UserInputError:
            log.info("%s: unreadable, its selection has no high frequency", m.path)
    return out


def _tile_matches(tile: Any, path: Path) -> list[Any]:
    if tile is None or not tile.best:
        raise ExportError(path, "no tile with recordings is selected", "click a tile on the map first")
    return list(tile.best)


def tile_recordings_csv(atlas: Any, tile: Any, path: str | Path) -> Path:
    """The selected tile's best-matching recordings (rank, id, title, path, duration_s, score, distance, km)."""
    from engine.gis.tables import MATCH_COLUMNS, recording_match_rows, write_rows

    path = Path(path)
    matches = _tile_matches(tile, path)
    return write_rows(path, MATCH_COLUMNS, recording_match_rows(matches, _durations(atlas)))


def tile_recordings_raven(atlas: Any, tile: Any, path: str | Path) -> Path:
    """The selected tile's best-matching recordings as a Raven Pro selection table (one whole-file
    selection each, laid end to end as Raven lays several files)."""
    from engine.gis.tables import write_raven

    path = Path(path)
    matches = _tile_matches(tile, path)
    return write_raven(path, matches, _durations(atlas), _nyquist(matches))


def indices_csv(atlas: Any, path: str | Path) -> Path:
    """The recordings' stored acoustic indices (empty cells: no value)."""
    from engine.gis.tables import write_rows

    path = Path(path)
    ind = atlas.indices
    if ind is None:
        raise ExportError(path, "this atlas has no acoustic indices",
                          f"add them with 'soundscape-engine atlas indices --atlas {atlas.path}'")
    r = atlas.recordings
    rows = [[r.ids[i], r.titles[i], r.paths[i], float(r.lon[i]), float(r.lat[i]), float(ind.hour[i]),
             *(float(v) for v in ind.values[i])] for i in range(len(r))]
    return write_rows(path, [*INDICES_HEAD, *ind.names], rows)


def write_png(data: bytes, path: str | Path) -> Path:
    """PNG bytes (rendered by Qt in the window) written atomically."""
    path = Path(path)
    if not data.startswith(b"\x89PNG"):
        raise ExportError(path, "nothing was rendered", "show the map or a spectrogram first")
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return path
