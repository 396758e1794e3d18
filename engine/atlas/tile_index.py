"""Where an atlas's tiles are, indexed so that the tiles in a view or under a point are found without
reading every tile (torch-free, numpy only).

Laying out every tile when an atlas is opened costs O(N): at 10 million tiles that is 10 s and 2 GB
before the map shows anything. The index holds what needs the whole atlas, computed once:

- how each source's longitudes are placed on the map (a source across the antimeridian is drawn in one
  piece just east of 180; :func:`engine.geo.contiguous_lon_rule`, then the corners' whole-turn shift);
- a bucket grid over the placed tiles' EPSG:3857 boxes: tile numbers ordered by the bucket of their box's
  south-west corner (``order``) and where each bucket's run starts (``starts``), plus the largest box, so
  a query widened by it finds every box that meets it from the buckets it covers;
- the extent, the median tile width, and each source's heat-map grid (shape and the affine from grid
  cells to EPSG:3857; one cell per tile where the source has a usable (col, row) grid).

Everything per tile that a query needs (boxes, corners, centres) is computed from the memory-mapped
footprints of the candidate tiles only. The index is written into the atlas at the end of every build
(``map/index.json``, ``map/order.<dtype>``, ``map/starts.i8``) and memory-mapped when opened; an atlas
without it (built before it existed, or whose tile count changed since) gets one computed in memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import files
from engine.geo import contiguous_lon_rule, lonlat_to_web_mercator, place_lon, unwrap_lon, wrap_lon

log = logging.getLogger(__name__)

INDEX_FOLDER = "map"
INDEX_FILE = "index.json"
INDEX_FORMAT = "soundscape-tile-index"
INDEX_VERSION = 1
TILES_PER_BUCKET_SIDE = 4  # a bucket is about 4 x 4 tiles
MAX_BUCKETS = 1 << 22
MAX_GRID_SIDE = 4096  # heat-map cells; a source spread wider gets coarser cells (several tiles per cell)
AFFINE_SAMPLE = 65_536  # tiles a source's grid affine is fitted on (evenly spaced; the fit is exact for a grid)
CHUNK = 1 << 20  # tiles per step while computing the index (bounded memory)
EDGE_M = 1.0  # a point query is widened by this (metres) so rounding never drops a tile whose edge it is on

# (a, b, c, d, e, f): x = a*col + b*row + c, y = d*col + e*row + f, for pixel-corner coordinates.
Affine = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class Placement:
    """How one source's tiles are placed: centre = ``place_lon(lon, reference, shift)``, corners unwrapped
    around that centre, then both moved by ``corner_shift`` (whole turns)."""

    reference: float | None
    shift: float
    corner_shift: float


@dataclass(frozen=True)
class GridSpec:
    """One source's heat-map grid: an image of ``shape`` placed by ``affine``. ``kind`` "cells": a tile's cell
    is its (col - col0, row - row0); "boxes": the cell its centre falls in (``cell_w`` x ``cell_h`` metres
    from ``west``/``south``, row 0 at the north)."""

    source: int
    kind: str
    shape: tuple[int, int]
    affine: Affine
    col0: int = 0
    row0: int = 0
    west: float = 0.0
    south: float = 0.0
    cell_w: float = 1.0
    cell_h: float = 1.0
    step: int = 1  # "cells": a cell is step x step tiles (a source wider than MAX_GRID_SIDE tiles)
    tile_cols: int = 0  # "cells": the source's width in tiles
    dense_start: int | None = None  # the source's tiles dense_start.. are its first dense_count tiles in row order
    dense_count: int = 0


class TileIndex:
    """The spatial index of one atlas's tiles (see the module docstring). ``tiles`` is the atlas's
    :class:`~engine.atlas.format.AtlasTiles` (or anything with ``lon``, ``lat``, ``footprints``,
    ``source`` and optionally ``grid``)."""

    def __init__(self, tiles: Any, meta: dict[str, Any], order: np.ndarray, starts: np.ndarray) -> None:
        self.tiles = tiles
        self.meta = meta
        self.count = int(meta["count"])
        self.order = order
        self.starts = starts
        self.bounds: tuple[float, float, float, float] = tuple(meta["bounds"])  # type: ignore[assignment]
        self.tile_width = float(meta["tile_width"])
        self.pad_x, self.pad_y = float(meta["pad"][0]), float(meta["pad"][1])
        b = meta["buckets"]
        self.west, self.south, self.size = float(b["west"]), float(b["south"]), float(b["size"])
        self.cols, self.rows = int(b["cols"]), int(b["rows"])
        self.placements = {int(k): Placement(v[0], float(v[1]), float(v[2])) for k, v in meta["placements"].items()}
        self.grids = [GridSpec(source=int(g["source"]), kind=g["kind"], shape=(int(g["shape"][0]), int(g["shape"][1])),
                               affine=tuple(float(v) for v in g["affine"]),  # type: ignore[arg-type]
                               col0=int(g.get("col0", 0)), row0=int(g.get("row0", 0)), west=float(g.get("west", 0.0)),
                               south=float(g.get("south", 0.0)), cell_w=float(g.get("cell_w", 1.0)),
                               cell_h=float(g.get("cell_h", 1.0)), step=int(g.get("step", 1)),
                               tile_cols=int(g.get("tile_cols", 0)), dense_start=g.get("dense_start"),
                               dense_count=int(g.get("dense_count", 0)))
                      for g in meta["grids"]]
        for g in self.grids:
            if g.step < 1 or (g.dense_start is not None and g.tile_cols < 1):
                raise ValueError(f"grid of source {g.source} is inconsistent")

    # ------------------------------------------------------------------------------ per tile

    def _placed_centres(self, lon: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tile centres placed as their sources are (before the corners' shift), and that shift per tile:
        the per-source rules looked up per tile, all tiles in one vectorised step (thousands of sources)."""
        if not hasattr(self, "_rules"):
            size = max([*self.placements, -1]) + 2  # the last row: sources without a rule (kept as they are)
            ref, has_ref = np.zeros(size), np.zeros(size, bool)
            shift, corner = np.zeros(size), np.zeros(size)
            for k, p in self.placements.items():
                ref[k], has_ref[k] = (p.reference or 0.0), p.reference is not None
                shift[k], corner[k] = p.shift, p.corner_shift
            self._rules = (ref, has_ref, shift, corner)
        ref, has_ref, shift, corner = self._rules
        rule = np.where((source >= 0) & (source < len(ref) - 1), source, len(ref) - 1)
        r = ref[rule]
        # the arithmetic of engine.geo.place_lon / unwrap_lon, per tile: identical results
        centres = np.where(has_ref[rule], r + wrap_lon(lon - r), lon) + shift[rule]
        return centres, corner[rule]

    def lonlat(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Placed centre longitudes, latitudes and corner lon/lat (k, 4, 2) of tiles ``idx`` (degrees)."""
        idx = np.asarray(idx, dtype=np.int64)
        lon = np.asarray(self.tiles.lon[idx], dtype=np.float64)
        lat = np.asarray(self.tiles.lat[idx], dtype=np.float64)
        fp = np.asarray(self.tiles.footprints[idx], dtype=np.float64).reshape(len(idx), 4, 2).copy()
        centres, corner = self._placed_centres(lon, np.asarray(self.tiles.source[idx], dtype=np.int64))
        fp[:, :, 0] = unwrap_lon(fp[:, :, 0], centres[:, None]) + corner[:, None]
        return centres + corner, lat, fp

    def quads(self, idx: np.ndarray) -> np.ndarray:
        """(k, 4, 2) EPSG:3857 corners of tiles ``idx`` as the map draws them."""
        _, _, fp = self.lonlat(idx)
        fx, fy = lonlat_to_web_mercator(fp[..., 0], fp[..., 1])
        return np.stack([fx, fy], axis=-1).reshape(len(fp), 4, 2)

    def centres(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """EPSG:3857 centres of tiles ``idx`` as the map draws them (footprints not read)."""
        idx = np.asarray(idx, dtype=np.int64)
        centres, corner = self._placed_centres(np.asarray(self.tiles.lon[idx], dtype=np.float64),
                                               np.asarray(self.tiles.source[idx], dtype=np.int64))
        x, y = lonlat_to_web_mercator(centres + corner, np.asarray(self.tiles.lat[idx], dtype=np.float64))
        return np.atleast_1d(x), np.atleast_1d(y)

    # -------------------------------------------------------------------------------- queries

    def candidates(self, west: float, south: float, east: float, north: float) -> np.ndarray:
        """Tiles (ascending) whose box may meet the rectangle (EPSG:3857): every one that does, and some
        neighbours, from the buckets the rectangle (widened by the largest tile) covers."""
        if self.count == 0 or not (east >= west and north >= south):
            return np.zeros(0, np.int64)
        c0, c1 = (int(np.clip((v - self.west) // self.size, 0, self.cols - 1)) for v in (west - self.pad_x, east))
        r0, r1 = (int(np.clip((v - self.south) // self.size, 0, self.rows - 1)) for v in (south - self.pad_y, north))
        if east < self.bounds[0] or west > self.bounds[2] or north < self.bounds[1] or south > self.bounds[3]:
            return np.zeros(0, np.int64)
        if c0 == 0 and r0 == 0 and c1 == self.cols - 1 and r1 == self.rows - 1:
            return np.arange(self.count, dtype=np.int64)
        parts = [np.asarray(self.order[int(self.starts[r * self.cols + c0]):int(self.starts[r * self.cols + c1 + 1])])
                 for r in range(r0, r1 + 1)]
        cand = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        return np.sort(cand)

    def visible(self, west: float, south: float, east: float, north: float) -> np.ndarray:
        """Tiles (ascending) whose EPSG:3857 box meets the rectangle."""
        cand = self.candidates(west, south, east, north)
        if cand.size == 0:
            return cand
        q = self.quads(cand)
        x0, x1 = q[..., 0].min(axis=1), q[..., 0].max(axis=1)
        y0, y1 = q[..., 1].min(axis=1), q[..., 1].max(axis=1)
        return cand[(x1 >= west) & (x0 <= east) & (y1 >= south) & (y0 <= north)]

    def at(self, x: float, y: float) -> int | None:
        """The tile whose drawn footprint contains the point (EPSG:3857), the nearest centre where they
        overlap."""
        cand = self.visible(x, y, x, y)
        if cand.size == 0:
            return None
        quads = self.quads(cand)
        edges = np.roll(quads, -1, axis=1) - quads
        rel = np.array([x, y]) - quads
        cross = edges[:, :, 0] * rel[:, :, 1] - edges[:, :, 1] * rel[:, :, 0]
        hits = cand[(cross >= 0).all(axis=1) | (cross <= 0).all(axis=1)]
        if hits.size == 0:
            return None
        cx, cy = self.centres(hits)
        return int(hits[np.argmin((cx - x) ** 2 + (cy - y) ** 2)])

    def near_lonlat(self, lon: float, lat: float) -> np.ndarray:
        """Tiles (ascending) whose box may contain the place (lon in [-180, 180)): a superset, for an exact
        test in degrees. A source placed east of 180 is looked up a turn further east too."""
        out = []
        for turn in (0.0, 360.0):
            x, y = (float(v) for v in lonlat_to_web_mercator(lon + turn, lat))
            out.append(self.candidates(x - EDGE_M, y - EDGE_M, x + EDGE_M, y + EDGE_M))
        return np.union1d(out[0], out[1]).astype(np.int64)


# ------------------------------------------------------------------------------------- computing


def _chunks(n: int) -> list[tuple[int, int]]:
    return [(a, min(a + CHUNK, n)) for a in range(0, n, CHUNK)]


def _by_source(source: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(source, its tiles ascending) for each source: one sort, not a scan of every tile per source."""
    order = np.argsort(source, kind="stable")
    sorted_sources = source[order]
    cuts = np.flatnonzero(np.diff(sorted_sources)) + 1
    return [(int(sorted_sources[part[0]]), part) for part in
            (order[a:b] for a, b in zip(np.r_[0, cuts], np.r_[cuts, source.size], strict=True))]


def _placements(tiles: Any, groups: list[tuple[int, np.ndarray]]) -> dict[int, Placement]:
    out = {}
    for s, idx in groups:
        reference, shift = contiguous_lon_rule(np.asarray(tiles.lon[idx], dtype=np.float64))
        west = np.inf
        for a, b in _chunks(idx.size):
            part = idx[a:b]
            centres = place_lon(np.asarray(tiles.lon[part], dtype=np.float64), reference, shift)
            corners = unwrap_lon(np.asarray(tiles.footprints[part], dtype=np.float64)[:, :, 0], centres[:, None])
            west = min(west, float(np.nanmin(corners))) if np.isfinite(corners).any() else west
        corner_shift = 360.0 * round((float(wrap_lon(west)) - west) / 360.0) if np.isfinite(west) else 0.0
        out[s] = Placement(reference, shift, corner_shift)
    return out


def _fit_affine(cols: np.ndarray, rows: np.ndarray, x: np.ndarray, y: np.ndarray) -> Affine | None:
    """Least-squares affine from cell centres (col + 0.5, row + 0.5) to (x, y); None if degenerate."""
    if cols.size < 3 or np.unique(cols).size < 2 or np.unique(rows).size < 2:
        return None
    design = np.column_stack([cols + 0.5, rows + 0.5, np.ones(cols.size)])
    (a, b, c), *_ = np.linalg.lstsq(design, x, rcond=None)
    (d, e, f), *_ = np.linalg.lstsq(design, y, rcond=None)
    if abs(a * e - b * d) < 1e-9:
        return None
    return float(a), float(b), float(c), float(d), float(e), float(f)


def _grid_spec(index: TileIndex, s: int, idx: np.ndarray) -> dict[str, Any]:
    """The heat-map grid of source ``s`` (tiles ``idx``, at least one), computed chunk by chunk."""
    grid = getattr(index.tiles, "grid", None)
    if grid is not None and len(grid) == index.count:
        c0 = r0 = np.iinfo(np.int64).max
        c1 = r1 = np.iinfo(np.int64).min
        for a, b in _chunks(idx.size):
            cells = np.asarray(grid[idx[a:b]], dtype=np.int64)
            c0, c1 = min(c0, int(cells[:, 0].min())), max(c1, int(cells[:, 0].max()))
            r0, r1 = min(r0, int(cells[:, 1].min())), max(r1, int(cells[:, 1].max()))
        width, height = c1 - c0 + 1, r1 - r0 + 1
        # A source wider than MAX_GRID_SIDE tiles gets cells of step x step tiles (the top-left one's value).
        step = max(1, -(-max(width, height) // MAX_GRID_SIDE))
        sample = idx[np.unique(np.linspace(0, idx.size - 1, min(idx.size, AFFINE_SAMPLE)).astype(np.int64))]
        cells = np.asarray(grid[sample], dtype=np.int64)
        x, y = index.centres(sample)
        affine = _fit_affine(cells[:, 0] - c0, cells[:, 1] - r0, x, y)
        if affine is not None:
            # A whole image tiled in scan order (the usual case): its heat map is the values in a row.
            dense = int(idx[-1] - idx[0]) == idx.size - 1
            for a, b in _chunks(idx.size):
                if not dense:
                    break
                cells = np.asarray(grid[idx[a:b]], dtype=np.int64)
                dense = bool(((cells[:, 1] - r0) * width + cells[:, 0] - c0 == np.arange(a, b)).all())
            ta, tb, tc, td, te, tf = affine
            return {"source": s, "kind": "cells", "shape": [(height - 1) // step + 1, (width - 1) // step + 1],
                    "affine": [ta * step, tb * step, tc, td * step, te * step, tf], "col0": c0, "row0": r0,
                    "step": step, "tile_cols": width,
                    "dense_start": int(idx[0]) if dense else None, "dense_count": int(idx.size) if dense else 0}
    # A source without a usable (col, row) grid: cells from its tiles' boxes.
    widths, heights = np.empty(idx.size, np.float32), np.empty(idx.size, np.float32)
    west = south = np.inf
    east = north = -np.inf
    for a, b in _chunks(idx.size):
        q = index.quads(idx[a:b])
        x0, x1, y0, y1 = q[..., 0].min(axis=1), q[..., 0].max(axis=1), q[..., 1].min(axis=1), q[..., 1].max(axis=1)
        widths[a:b], heights[a:b] = x1 - x0, y1 - y0
        west, south = min(west, float(x0.min())), min(south, float(y0.min()))
        east, north = max(east, float(x1.max())), max(north, float(y1.max()))
    w = float(np.median(widths)) or 1.0
    h = float(np.median(heights)) or 1.0
    w = max(w, (east - west) / MAX_GRID_SIDE)  # several tiles share a cell rather than a huge image
    h = max(h, (north - south) / MAX_GRID_SIDE)
    ncols = nrows = 1
    for a, b in _chunks(idx.size):
        cx, cy = index.centres(idx[a:b])
        ncols = max(ncols, int(np.floor((cx - west) / w).max()) + 1)
        nrows = max(nrows, int(np.floor((cy - south) / h).max()) + 1)
    return {"source": s, "kind": "boxes", "shape": [nrows, ncols],
            "affine": [w, 0.0, west, 0.0, -h, south + nrows * h], "west": west, "south": south, "cell_w": w, "cell_h": h}


def fingerprint(tiles: Any) -> str:
    """A short digest of the first and last tiles' footprints and the count: an index made for other tiles
    (the atlas rebuilt in place with as many tiles) is not used."""
    n = len(tiles.lon)
    h = hashlib.sha256(str(n).encode())
    if n:
        for i in (0, n - 1):
            h.update(np.ascontiguousarray(tiles.footprints[i], dtype="<f8").tobytes())
            h.update(np.ascontiguousarray(tiles.source[i:i + 1], dtype="<i8").tobytes())
    return h.hexdigest()[:32]


def compute_tile_index(tiles: Any) -> TileIndex:
    """The :class:`TileIndex` of ``tiles`` computed in memory (O(N), in chunks)."""
    n = len(tiles.lon)
    source = np.asarray(tiles.source, dtype=np.int64).reshape(n)
    meta: dict[str, Any] = {"format": INDEX_FORMAT, "format_version": INDEX_VERSION, "count": n,
                            "fingerprint": fingerprint(tiles), "placements": {}, "grids": []}
    if n == 0:
        meta.update(bounds=[-1.0, -1.0, 1.0, 1.0], tile_width=1.0, pad=[0.0, 0.0],
                    buckets={"west": 0.0, "south": 0.0, "size": 1.0, "cols": 1, "rows": 1})
        return TileIndex(tiles, meta, np.zeros(0, np.int64), np.zeros(2, np.int64))
    groups = _by_source(source)
    placements = _placements(tiles, groups)
    meta["placements"] = {str(s): [p.reference, p.shift, p.corner_shift] for s, p in placements.items()}
    meta.update(bounds=[0.0, 0.0, 1.0, 1.0], tile_width=1.0, pad=[0.0, 0.0],
                buckets={"west": 0.0, "south": 0.0, "size": 1.0, "cols": 1, "rows": 1})
    index = TileIndex(tiles, meta, np.zeros(0, np.int64), np.zeros(2, np.int64))  # placements only, for quads()
    # Per tile only what the bucketing needs (the box's south-west corner, float64 for exact buckets) and
    # the widths for the median; extents and the largest box accumulate chunk by chunk.
    x0, y0, width = np.empty(n), np.empty(n), np.empty(n, np.float32)
    west = south = np.inf
    east = north = pad_x = pad_y = -np.inf
    for a, b in _chunks(n):
        q = index.quads(np.arange(a, b))
        bx0, bx1 = q[..., 0].min(axis=1), q[..., 0].max(axis=1)
        by0, by1 = q[..., 1].min(axis=1), q[..., 1].max(axis=1)
        x0[a:b], y0[a:b], width[a:b] = bx0, by0, bx1 - bx0
        west, south = min(west, float(bx0.min())), min(south, float(by0.min()))
        east, north = max(east, float(bx1.max())), max(north, float(by1.max()))
        pad_x, pad_y = max(pad_x, float((bx1 - bx0).max())), max(pad_y, float((by1 - by0).max()))
    tile_width = float(np.median(width))
    del width
    side = TILES_PER_BUCKET_SIDE * max(tile_width, 1e-9)
    side = max(side, float(np.sqrt((east - west) * (north - south) / MAX_BUCKETS)))  # bound the bucket count
    cols, rows = int((east - west) // side) + 1, int((north - south) // side) + 1
    bucket = np.clip(((y0 - south) // side).astype(np.int64), 0, rows - 1) * cols
    del y0
    bucket += np.clip(((x0 - west) // side).astype(np.int64), 0, cols - 1)
    del x0
    order = np.argsort(bucket, kind="stable").astype(np.int32 if n < 2**31 else np.int64)
    starts = np.searchsorted(bucket[order], np.arange(cols * rows + 1)).astype(np.int64)
    del bucket
    meta.update(bounds=[west, south, east, north], tile_width=tile_width, pad=[pad_x, pad_y],
                buckets={"west": west, "south": south, "size": float(side), "cols": cols, "rows": rows})
    index = TileIndex(tiles, meta, order, starts)
    for s, idx in groups:
        meta["grids"].append(_grid_spec(index, s, idx))
    return TileIndex(tiles, meta, order, starts)


# ---------------------------------------------------------------------------- on disk


def _order_name(dtype: np.dtype) -> str:
    return "order.i4" if dtype == np.int32 else "order.i8"


def write_tile_index(root: str | Path, index: TileIndex) -> None:
    """Write ``index`` into the atlas at ``root`` (``map/``): the arrays first, index.json last (it is what
    says the arrays are complete). Call it while holding the atlas's lock."""
    folder = Path(root) / INDEX_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    files.remove_stale_temp_files(folder)
    order = np.ascontiguousarray(index.order, dtype=index.order.dtype.newbyteorder("<"))
    name = _order_name(index.order.dtype)
    files.atomic_write_bytes(folder / name, lambda f: f.write(order.tobytes()), order.nbytes)
    for other in ("order.i4", "order.i8"):
        if other != name:
            (folder / other).unlink(missing_ok=True)
    starts = np.ascontiguousarray(index.starts, dtype="<i8")
    files.atomic_write_bytes(folder / "starts.i8", lambda f: f.write(starts.tobytes()), starts.nbytes)
    meta = {**index.meta, "order": name}
    files.atomic_write_text(folder / INDEX_FILE, json.dumps(files.json_safe(meta), indent=1))


def read_tile_index(root: str | Path, tiles: Any) -> TileIndex | None:
    """The index stored in the atlas at ``root`` for these ``tiles``, memory-mapped; None when there is none
    or it was made for other tiles (then compute one)."""
    folder = Path(root) / INDEX_FOLDER
    try:
        meta = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        if meta.get("format") != INDEX_FORMAT or int(meta.get("format_version", 0)) != INDEX_VERSION:
            return None
        n = len(tiles.lon)
        if int(meta["count"]) != n or meta["fingerprint"] != fingerprint(tiles):
            return None
        name = meta["order"]
        dtype = {"order.i4": "<i4", "order.i8": "<i8"}[name]
        b = meta["buckets"]
        n_starts = int(b["cols"]) * int(b["rows"]) + 1
        order = _memmap(folder / name, dtype, n)
        starts = _memmap(folder / "starts.i8", "<i8", n_starts)
        if order is None or starts is None:
            return None
        return TileIndex(tiles, meta, order, starts)
    except (KeyError, TypeError, ValueError) as err:
        log.warning("%s: unusable map index (%s); computing one", folder, err)
        return None


def _memmap(path: Path, dtype: str, count: int) -> np.ndarray | None:
    if count == 0:
        return np.zeros(0, dtype)
    try:
        if path.stat().st_size != count * np.dtype(dtype).itemsize:
            return None
    except OSError:
        return None
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))


def update_tile_index(root: str | Path) -> bool:
    """Bring the atlas's stored map index up to date (after a build); True when it was (re)written."""
    from engine.atlas.format import open_atlas

    atlas = open_atlas(root)
    if read_tile_index(atlas.path, atlas.tiles) is not None:
        return False
    write_tile_index(atlas.path, compute_tile_index(atlas.tiles))
    return True


def tile_index_of(atlas: Any) -> TileIndex:
    """The opened atlas's index: the stored one, or one computed in memory; kept on the atlas object."""
    cached = getattr(atlas, "_tile_index_cache", None)
    if cached is not None and cached.count == len(atlas.tiles):
        return cached
    index = read_tile_index(atlas.path, atlas.tiles)
    if index is None:
        if len(atlas.tiles) > 1_000_000:
            log.info("%s has no map index; computing one in memory (rebuild the atlas to store it)", atlas.path)
        index = compute_tile_index(atlas.tiles)
    atlas._tile_index_cache = index
    return index
