"""The atlas on disk, and opening it (torch-free). Format ``soundscape-atlas`` version 3 (version 2, with the
sources inside atlas.json, and version 1, without acoustic indices, still open).

An atlas is a folder::

    atlas.json                  manifest: format, version, bundle_id, counts, tables, progress, and
                                "source_log": which sources.<k>.jsonl holds the sources and how many
                                of its bytes count
    sources.<k>.jsonl           the imagery sources' entries, one JSON line per change, the last line of
                                an index winning (version 3; see engine.atlas.source_log)
    tiles/lon.f8 lat.f8         (N,) float64 WGS84 centres (lon in [-180, 180))
    tiles/footprint.f8          (N, 4, 2) float64 lon/lat corners: top-left, top-right, bottom-right,
                                bottom-left of the tile in its image (lon within 180 degrees of
                                the centre: past +-180 for a tile astride the antimeridian)
    tiles/source.i4             (N,) int32 index into the sources
    tiles/grid.i4               (N, 2) int32 (col, row) of the tile in its source's grid
    tiles/thumb.i8              (N, 2) int64 (offset, length) of the tile's JPEG in thumbnails.bin
    tiles/embedding.<g>.f4      (N, D) float32 embeddings of generation g (atlas.json "generation")
    tiles/sqnorm.<g>.f4         (N,) float32 squared norms of those embeddings (for fast distances)
    thumbnails.bin              JPEG thumbnails, back to back
    recordings/meta.jsonl       one JSON object per recording: id, lon, lat, path, title, duration, table;
                                from a campaign also site, recorder, start_utc, start_local, timezone, hour
                                (optional keys: see engine.atlas.times; older readers ignore them)
    recordings/embedding.<g>.f4 (M, D) float32
    overviews/source-<k>.png    RGBA overview of source k in EPSG:3857 (bounds in its entry)
    recordings/indices.f8       (R, K) float64 acoustic indices of the first R recordings (version 2;
                                atlas.json "indices": names, parameters, rows; see engine.atlas.indices)
    recordings/hour.f8          (R,) float64 local hour of day of each recording's start (NaN: unknown)
    map/index.json, order.i4|i8, starts.i8
                                the tile index: where the tiles are, for the map's views and point lookups
                                without reading every tile (derived; rewritten by a build when the tiles
                                change; see engine.atlas.tile_index)
    map/overviews.png, .json    the sources' overviews in one picture (2+ sources; engine.atlas.overview_mosaic)
    map/pyramid/                large sources' imagery between overview and tiles (engine.atlas.imagery_pyramid)

Arrays are raw little-endian C-order rows with no header; their row counts are ``tiles.count`` and
``recordings.count`` in atlas.json. Files only ever grow by whole parts, and atlas.json is replaced
atomically after the bytes are on disk, so a crash leaves at most an unused tail that the next build
cuts off; readers memory-map exactly the counted rows, which makes opening instant whatever the size
and keeps only the pages a query touches in memory. Tile ids are their row numbers.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import files
from engine.atlas.times import RecordingTimes, times_from_meta
from engine.errors import AtlasError

if TYPE_CHECKING:
    from engine.bundle.format import Bundle

log = logging.getLogger(__name__)

ATLAS_FORMAT = "soundscape-atlas"
ATLAS_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)  # version 1 has no acoustic indices; 1 and 2 keep the sources in atlas.json
MANIFEST = "atlas.json"
THUMBNAILS = "thumbnails.bin"
# The one advice for an atlas whose files hold less than atlas.json counts (reading and building agree:
# an append-only build cannot resume over missing bytes).
DAMAGED_FIX = "the atlas is damaged; build it again into a new folder (or restore it from a copy)"
# name -> (dtype, per-row shape given D)
TILE_ARRAYS: dict[str, tuple[str, Any]] = {
    "lon": ("<f8", ()), "lat": ("<f8", ()), "footprint": ("<f8", (4, 2)), "source": ("<i4", ()),
    "grid": ("<i4", (2,)), "thumb": ("<i8", (2,)),
}
_SUFFIX = {"<f8": "f8", "<f4": "f4", "<i4": "i4", "<i8": "i8"}


def tile_array_path(root: Path, name: str, generation: int | None = None) -> Path:
    if name in TILE_ARRAYS:
        return root / "tiles" / f"{name}.{_SUFFIX[TILE_ARRAYS[name][0]]}"
    return root / "tiles" / f"{name}.{generation}.f4"  # embedding, sqnorm


def recording_embedding_path(root: Path, generation: int) -> Path:
    return root / "recordings" / f"embedding.{generation}.f4"


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and check atlas.json. Raises :class:`AtlasError` naming the folder and the fix."""
    if not path.exists():
        raise AtlasError(path, "atlas not found", "build one with 'soundscape-engine atlas build'")
    from engine.atlas.source_log import LOG_KEY, read_source_log

    for attempt in range(3):
        manifest = files.read_manifest(path / MANIFEST, ATLAS_FORMAT, READABLE_VERSIONS, AtlasError, what="an atlas",
                                       version_key="format_version", make="name a folder made by 'atlas build'",
                                       redo="restore the atlas from a copy, or build it again with this version")
        _check_counts(path / MANIFEST, manifest)
        if LOG_KEY not in manifest:  # version 1 or 2: the sources are inside atlas.json
            return manifest
        try:
            manifest["sources"] = read_source_log(path, manifest[LOG_KEY], DAMAGED_FIX)
            return manifest
        except AtlasError:
            # A build running beside this reader may have just switched to a rewritten log and removed the
            # old one: atlas.json, read again, names the new one.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _check_counts(where: Path, manifest: dict[str, Any]) -> None:
    """The numbers atlas.json gives sizes by: whole numbers in range, or one line naming the field.
    (The arrays are then held to them when they are opened.)"""
    def count(section: str | None, key: str, low: int = 0) -> None:
        holder = manifest.get(section) if section else manifest
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**48:
            name = f"{section}.{key}" if section else key
            raise AtlasError(where, f"{name} is {value!r}, not a count from {low}", DAMAGED_FIX)

    count(None, "embedding_dim", 1)
    count(None, "generation")
    count("tiles", "count")
    count("tiles", "thumbnail_bytes")
    count("recordings", "count")
    count("recordings", "meta_bytes")


def _map(path: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Memory-map exactly ``shape`` rows of a raw array (an empty array when there are none)."""
    if shape[0] == 0:
        return np.empty(shape, dtype=dtype)
    need = int(np.prod(shape)) * np.dtype(dtype).itemsize
    size = path.stat().st_size if path.is_file() else -1
    if size < need:
        raise AtlasError(path, f"holds {max(size, 0)} bytes, the atlas counts {need}", DAMAGED_FIX)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


@dataclass(frozen=True)
class SourceInfo:
    """One imagery source (GeoTIFF) of the atlas."""

    index: int
    path: str
    crs: str
    tiles: int
    tile_size_m: float | None
    tile_px: tuple[int, int]
    status: str  # "complete", "building" (interrupted: run the build again) or "failed"
    error: str | None
    overview_bounds: tuple[float, float, float, float] | None  # EPSG:3857 west, south, east, north


@dataclass(frozen=True)
class AtlasTiles:
    """Tile arrays (memory-mapped). ``ids`` are the row numbers."""

    ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    footprints: np.ndarray
    embeddings: np.ndarray
    sqnorms: np.ndarray
    source: np.ndarray
    grid: np.ndarray
    thumb: np.ndarray

    def __len__(self) -> int:
        return int(self.lon.shape[0])


@dataclass(frozen=True)
class AtlasRecordings:
    """The atlas's recordings; ``paths`` are absolute."""

    ids: list[str]
    lon: np.ndarray
    lat: np.ndarray
    paths: list[str]
    titles: list[str]
    durations: np.ndarray
    embeddings: np.ndarray
    times: RecordingTimes | None = None  # sites and local times (campaign recordings; None/NaN for others)

    def __len__(self) -> int:
        return len(self.ids)


class Atlas:
    """An opened atlas (read-only; see the module docstring for the files).

    ``tiles``: ``ids`` (row numbers), ``lon``/``lat`` centres, ``footprints`` (N, 4, 2) lon/lat corners,
    ``embeddings`` (N, D), ``sqnorms``, ``source`` (index into ``sources``), ``grid`` ((col, row) in the
    source) and ``thumb``, all read-only memory maps; ``recordings``: ``ids``, ``lon``, ``lat``, ``paths``,
    ``titles``, ``durations``, ``embeddings`` (M, D); ``sources``: :class:`SourceInfo` per imagery source.
    :meth:`thumbnail` (thread-safe) and :meth:`overview` give the pictures the map shows.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.bundle_id: str = manifest["bundle_id"]
        self.embedding_dim: int = int(manifest["embedding_dim"])
        self.distance: str = manifest["distance"]
        self.generation: int = int(manifest["generation"])
        n, d, g = int(manifest["tiles"]["count"]), self.embedding_dim, self.generation
        arrays = {name: _map(tile_array_path(path, name), dtype, (n, *tail))
                  for name, (dtype, tail) in TILE_ARRAYS.items()}
        self.tiles = AtlasTiles(ids=np.arange(n, dtype=np.int64), lon=arrays["lon"], lat=arrays["lat"],
                                footprints=arrays["footprint"],
                                embeddings=_map(tile_array_path(path, "embedding", g), "<f4", (n, d)),
                                sqnorms=_map(tile_array_path(path, "sqnorm", g), "<f4", (n,)),
                                source=arrays["source"], grid=arrays["grid"], thumb=arrays["thumb"])
        self.recordings = self._read_recordings(int(manifest["recordings"]["count"]))
        self.sources = [SourceInfo(index=s["index"], path=s["path"], crs=s.get("crs", ""), tiles=s.get("tiles", 0),
                                   tile_size_m=s.get("tile_size_m"), tile_px=tuple(s.get("tile_px", (0, 0))),
                                   status=s.get("status", "building"), error=s.get("error"),
                                   overview_bounds=tuple(s["overview"]["bounds_3857"]) if s.get("overview") else None)
                        for s in manifest.get("sources", [])]
        self._check_thumbnails(int(manifest["tiles"]["thumbnail_bytes"]))
        self._thumbs_file = None
        self._thumbs_lock = threading.Lock()  # the app reads thumbnails from worker threads

    def _check_thumbnails(self, counted: int) -> None:
        """thumbnails.bin must hold the bytes atlas.json counts and the last tile's thumbnail must end within
        them (thumbnails are appended in tile order), or the gallery would show blanks without a word."""
        path = self.path / THUMBNAILS
        size = path.stat().st_size if path.is_file() else -1
        if len(self.tiles) == 0:
            return
        offset, length = (int(v) for v in self.tiles.thumb[-1])
        if size < counted or offset < 0 or length < 0 or offset + length > counted:
            raise AtlasError(path, f"holds {max(size, 0)} bytes, the atlas counts {counted} and its last thumbnail "
                             f"ends at byte {offset + length}", DAMAGED_FIX)

    def _read_recordings(self, m: int) -> AtlasRecordings:
        rows: list[dict[str, Any]] = []
        meta = self.path / "recordings" / "meta.jsonl"
        if m:
            try:
                with open(meta, encoding="utf-8") as f:
                    for line in f:
                        if len(rows) == m:
                            break
                        rows.append(json.loads(line))
            except (OSError, json.JSONDecodeError) as err:
                raise AtlasError(meta, f"unreadable ({type(err).__name__})", DAMAGED_FIX) from None
            if len(rows) < m:
                raise AtlasError(meta, f"lists {len(rows)} recordings, the atlas counts {m}", DAMAGED_FIX)
        return AtlasRecordings(
            ids=[str(r["id"]) for r in rows], lon=np.array([r["lon"] for r in rows], np.float64),
            lat=np.array([r["lat"] for r in rows], np.float64), paths=[r["path"] for r in rows],
            titles=[r.get("title", "") for r in rows], durations=np.array([r.get("duration", 0.0) for r in rows]),
            embeddings=_map(recording_embedding_path(self.path, self.generation), "<f4", (m, self.embedding_dim)),
            times=times_from_meta(rows))

    @cached_property
    def bounds(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) in degrees over all tile footprints and recordings, or None if empty."""
        lons = [self.tiles.footprints[:, :, 0].ravel(), self.recordings.lon]
        lats = [self.tiles.footprints[:, :, 1].ravel(), self.recordings.lat]
        lon, lat = np.concatenate(lons), np.concatenate(lats)
        if lon.size == 0:
            return None
        return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())

    def thumbnail(self, i: int) -> np.ndarray:
        """Tile ``i``'s thumbnail as (h, w, 3) uint8 RGB (read and decoded on demand)."""
        import io

        from PIL import Image

        offset, length = (int(v) for v in self.tiles.thumb[i])
        with self._thumbs_lock:
            if self._thumbs_file is None:
                self._thumbs_file = open(self.path / THUMBNAILS, "rb")  # noqa: SIM115 - kept open for later calls
            self._thumbs_file.seek(offset)
            data = self._thumbs_file.read(length)
        if len(data) != length:
            raise AtlasError(self.path / THUMBNAILS, "is shorter than the atlas counts", DAMAGED_FIX)
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def overview(self, source_index: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """Source ``source_index``'s overview: RGBA uint8 (h, w, 4) and its (west, south, east, north) bounds
        in EPSG:3857 metres."""
        from PIL import Image

        entry = self.manifest["sources"][source_index]
        if not entry.get("overview"):
            raise AtlasError(self.path, f"source {source_index} has no overview yet",
                             "run the same 'atlas build' again to finish it")
        with Image.open(self.path / entry["overview"]["file"]) as img:
            rgba = np.asarray(img.convert("RGBA"))
        return rgba, tuple(entry["overview"]["bounds_3857"])

    @cached_property
    def indices(self) -> AtlasIndices | None:
        """The recordings' acoustic indices, or None for an atlas built before indices existed or without
        them."""
        return read_indices(self)

    @property
    def reembed_pending(self) -> str | None:
        """The bundle_id of an unfinished re-embedding, if any."""
        pending = self.manifest.get("reembed")
        return pending["bundle_id"] if pending else None

    def describe(self) -> str:
        return (f"{self.path.name}: {len(self.tiles)} tiles from {len(self.sources)} image(s), "
                f"{len(self.recordings)} recordings, bundle {self.bundle_id[:12]}")

    def close(self) -> None:
        with self._thumbs_lock:
            if self._thumbs_file is not None:
                self._thumbs_file.close()
                self._thumbs_file = None


def bundle_id_of(bundle: Bundle | str | Path) -> str:
    """The id of a Bundle, a bundle folder, or an id string."""
    if hasattr(bundle, "bundle_id"):
        return bundle.bundle_id
    if isinstance(bundle, Path) or (isinstance(bundle, str) and Path(bundle).is_dir()):
        from engine.bundle.format import load_bundle

        return load_bundle(bundle, verify_hashes=False).bundle_id
    return str(bundle)


def open_atlas(path: str | Path, bundle: Bundle | str | Path | None = None) -> Atlas:
    """Open an atlas for reading.

    Args:
        path: the atlas folder (or its atlas.json).
        bundle: the model bundle it will be used with (a Bundle, a bundle folder or a bundle_id); an
            atlas built with another bundle is refused.

    Raises:
        AtlasError: missing, not an atlas, another format version, damaged, or another bundle.
    """
    path = Path(path)
    if path.name == MANIFEST:
        path = path.parent
    manifest = read_manifest(path)
    if bundle is not None:
        wanted = bundle_id_of(bundle)
        if wanted != manifest["bundle_id"]:
            raise AtlasError(path, f"was built with model bundle {manifest['bundle_id'][:12]}, not with the loaded "
                             f"bundle {wanted[:12]}",
                             "open it with the bundle it was built with, re-embed it "
                             "('soundscape-engine atlas reembed'), or build a new atlas")
    try:
        return Atlas(path.resolve(), manifest)
    except AtlasError:  # already one line naming the damaged file (it is a ValueError too)
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise AtlasError(path / MANIFEST, f"malformed ({type(err).__name__}: {err})", DAMAGED_FIX) from None


# ---------------------------------------------------------------- acoustic indices (version 2)

INDICES_FILE = "recordings/indices.f8"
HOUR_FILE = "recordings/hour.f8"
# Each tile's nearest recordings of generation g (engine.atlas.indices.write_neighbours): derived, per generation.
NEIGHBOURS_FILE = "tiles/neighbours.{g}.i4"
WEIGHTS_FILE = "tiles/neighbour_weights.{g}.f4"


@dataclass(frozen=True)
class AtlasIndices:
    """Acoustic indices of an atlas's recordings: ``values`` (M, K) with NaN for an undefined value or a
    recording not analysed yet (``computed`` False), ``hour`` (M,) local start hour or NaN."""

    names: list[str]
    values: np.ndarray
    hour: np.ndarray
    computed: np.ndarray
    parameters: dict[str, Any]
    library: str
    window_s: float | None
    summary: str

    def column(self, name: str) -> np.ndarray:
        """The (M,) values of one index (KeyError names the known ones)."""
        if name not in self.names:
            raise KeyError(f"{name!r} is not among the atlas's indices ({', '.join(self.names)})")
        return self.values[:, self.names.index(name)]


def read_indices(atlas: Any) -> AtlasIndices | None:
    """The indices of an opened :class:`engine.atlas.Atlas`, or None when it has none (version 1)."""
    entry = atlas.manifest.get("indices")
    if not entry:
        return None
    m, names = len(atlas.recordings), list(entry["names"])
    rows = min(int(entry["rows"]), m)
    values = np.full((m, len(names)), np.nan)
    hour = np.full(m, np.nan)
    if rows:
        values[:rows] = _map(atlas.path / INDICES_FILE, "<f8", (rows, len(names)))
        hour[:rows] = _map(atlas.path / HOUR_FILE, "<f8", (rows,))
    computed = np.zeros(m, bool)
    computed[:rows] = True
    return AtlasIndices(names=names, values=values, hour=hour, computed=computed,
                        parameters=dict(entry.get("parameters", {})), library=entry.get("library", ""),
                        window_s=entry.get("window_s"), summary=entry.get("summary", "mean"))
