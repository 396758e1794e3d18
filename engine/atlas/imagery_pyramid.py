"""Imagery between a source's overview and its tiles' own images: a pyramid of Web Mercator chunks made
from the tile thumbnails (torch-free).

A source's overview is at most 2048 px a side and the map draws tiles' own thumbnails only when a few
hundred are in view. For a large source (a county's orthophoto, a national VRT) the zooms in between
showed the overview blown up: at 3,000 tiles across, under one overview pixel per tile. So, at the end of a
build, each source whose thumbnails are sharper than its overview gets levels of 1024 px chunks in
EPSG:3857, as the map places its tiles (``engine.atlas.tile_index``): level 0 at :data:`CELL_PX` pixels a
tile, each further level half as fine, up to the overview's resolution. Level 0 is drawn from the
thumbnails (decoded at a reduced scale straight from the JPEG's DCT, each warped onto its tile's
footprint); each higher level is its four children halved (alpha-weighted), computed depth first so a few
chunks are in memory at a time.

On disk: ``map/pyramid/index.json`` (per source: its tile count and path, the origin and level-0
resolution, and the chunks of each level) and ``map/pyramid/s<k>/<level>/<cx>_<cy>.webp``. A source's
entry is written after its chunks; one whose tile count or path changed is made again. The app draws the
chunks of the level that suits the zoom for the sources in view (``app.services.map_overviews``).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from engine import files

log = logging.getLogger(__name__)

PYRAMID_FOLDER = "map/pyramid"
PYRAMID_META = "map/pyramid/index.json"
PYRAMID_FORMAT = "soundscape-imagery-pyramid"
PYRAMID_VERSION = 1
CELL_PX = 32  # level-0 pixels across a tile: thumbnails (128 px by default) decode at 1/4 scale to this
CHUNK_PX = 1024
MIN_GAIN = 1.5  # a pyramid is made only when level 0 is at least this much sharper than the overview
WEBP_QUALITY = 80
WEBP_METHOD = 2  # libwebp's effort: 2 encodes a chunk in ~40 ms for files ~20% larger than 6


def chunk_path(root: Path, source: int, level: int, cx: int, cy: int) -> Path:
    return Path(root) / PYRAMID_FOLDER / f"s{source}" / str(level) / f"{cx}_{cy}.webp"


def read_pyramid_meta(root: str | Path) -> dict[str, Any] | None:
    """The pyramid's index, or None when the atlas has none (or it is unreadable: the map then shows the
    overviews and tiles as before)."""
    try:
        meta = json.loads((Path(root) / PYRAMID_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != PYRAMID_FORMAT or meta.get("version") != PYRAMID_VERSION:
        return None
    return meta


def chunk_bounds(spec: dict[str, Any], level: int, cx: int, cy: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) in EPSG:3857 of a chunk of a source's pyramid ``spec``."""
    west0, north0 = spec["origin"]
    side = float(spec["res"]) * (2 ** level) * int(spec.get("chunk_px", CHUNK_PX))
    west, north = west0 + cx * side, north0 - cy * side
    return west, north - side, west + side, north


def load_chunk(root: str | Path, source: int, level: int, cx: int, cy: int) -> np.ndarray:
    """A chunk as RGBA (h, w, 4) uint8, row 0 north."""
    from PIL import Image

    with Image.open(chunk_path(Path(root), source, level, cx, cy)) as img:
        return np.asarray(img.convert("RGBA"))


# ------------------------------------------------------------------------------------------ building

def _homographies(dst: np.ndarray, w: Any, h: Any) -> np.ndarray:
    """(k, 8) PIL PERSPECTIVE coefficients mapping each output quad ``dst`` (k, 4, 2: top-left, top-right,
    bottom-right, bottom-left) to the source rectangle (0, 0)-(w, h) (``w``, ``h``: one size or one per quad;
    all quads solved in one batched call)."""
    k = len(dst)
    w, h = np.broadcast_to(np.asarray(w, np.float64), (k,)), np.broadcast_to(np.asarray(h, np.float64), (k,))
    zero = np.zeros(k)
    src = np.stack([np.stack([zero, zero], 1), np.stack([w, zero], 1), np.stack([w, h], 1),
                    np.stack([zero, h], 1)], axis=1)
    a = np.zeros((k, 8, 8))
    b = np.zeros((k, 8))
    for i in range(4):
        x, y = dst[:, i, 0], dst[:, i, 1]
        u, v = src[:, i, 0], src[:, i, 1]
        a[:, 2 * i, 0], a[:, 2 * i, 1], a[:, 2 * i, 2] = x, y, 1
        a[:, 2 * i, 6], a[:, 2 * i, 7] = -u * x, -u * y
        a[:, 2 * i + 1, 3], a[:, 2 * i + 1, 4], a[:, 2 * i + 1, 5] = x, y, 1
        a[:, 2 * i + 1, 6], a[:, 2 * i + 1, 7] = -v * x, -v * y
        b[:, 2 * i], b[:, 2 * i + 1] = u, v
    return np.linalg.solve(a, b[..., None])[..., 0]


def _halve(img: Any) -> Any:
    """A 2048 px RGBA picture halved with colours weighted by alpha (PIL's premultiplied mode), so the
    transparent side of a source's edge does not darken it."""
    return img.convert("RGBa").reduce(2).convert("RGBA")


class _SourceBuilder:
    """Draws one source's chunks (see the module docstring)."""

    def __init__(self, root: Path, atlas: Any, index: Any, source: int, idx: np.ndarray, res: float,
                 levels: int) -> None:
        self.root, self.atlas, self.index, self.source = root, atlas, index, source
        self.res, self.levels = res, levels
        self.thumb = np.asarray(atlas.tiles.thumb)
        self.blob = np.memmap(atlas.path / "thumbnails.bin", dtype=np.uint8, mode="r") \
            if int(atlas.manifest["tiles"]["thumbnail_bytes"]) else np.zeros(0, np.uint8)
        self.written: list[list[list[int]]] = [[] for _ in range(levels)]
        boxes = np.empty((len(idx), 4))  # west, south, east, north of each tile as the map draws it
        for start in range(0, len(idx), 1 << 18):  # bounded memory over a 10-million-tile source
            q = index.quads(idx[start:start + (1 << 18)])
            boxes[start:start + len(q)] = np.stack([q[:, :, 0].min(1), q[:, :, 1].min(1), q[:, :, 0].max(1),
                                                    q[:, :, 1].max(1)], axis=1)
        self.origin = (float(boxes[:, 0].min()), float(boxes[:, 3].max()))  # the source's north-west corner
        # Each tile in every level-0 chunk its box meets (at most 2 x 2: a tile is far smaller than a chunk).
        side = res * CHUNK_PX
        x0 = np.floor((boxes[:, 0] - self.origin[0]) / side).astype(np.int64)
        y0 = np.floor((self.origin[1] - boxes[:, 3]) / side).astype(np.int64)
        # a box ending exactly on a chunk's edge does not reach into the next chunk
        x1 = np.maximum(x0, np.ceil((boxes[:, 2] - self.origin[0]) / side).astype(np.int64) - 1)
        y1 = np.maximum(y0, np.ceil((self.origin[1] - boxes[:, 1]) / side).astype(np.int64) - 1)
        idx = np.asarray(idx, np.int64)
        pairs = np.unique(np.concatenate([np.stack([cy, cx, idx], 1) for cx in (x0, x1) for cy in (y0, y1)]), axis=0)
        keys = pairs[:, 0] * (1 << 32) + pairs[:, 1]
        cuts = np.flatnonzero(np.diff(keys)) + 1
        self.cells: dict[tuple[int, int], np.ndarray] = {
            (int(p[0, 1]), int(p[0, 0])): p[:, 2] for p in np.split(pairs, cuts)}

    def _tile_image(self, i: int) -> Any:
        from PIL import Image

        offset, length = (int(v) for v in self.thumb[i])
        img = Image.open(io.BytesIO(self.blob[offset:offset + length].tobytes()))
        img.draft("RGB", (CELL_PX, CELL_PX))  # decoded at 1/2, 1/4 or 1/8 scale: only what is drawn
        return img.convert("RGBA")

    def level0(self, cx: int, cy: int) -> Any:
        from PIL import Image

        tiles = self.cells.get((cx, cy))
        if tiles is None:
            return None
        canvas = Image.new("RGBA", (CHUNK_PX, CHUNK_PX))
        west, north = self.origin[0] + cx * self.res * CHUNK_PX, self.origin[1] - cy * self.res * CHUNK_PX
        quads = self.index.quads(tiles)
        px = np.stack([(quads[:, :, 0] - west) / self.res, (north - quads[:, :, 1]) / self.res], axis=2)
        lo = np.floor(px.min(1)).astype(np.int64)
        hi = np.ceil(px.max(1)).astype(np.int64)
        images = []
        for i in tiles:
            try:
                images.append(self._tile_image(int(i)))
            except (OSError, ValueError) as err:  # a damaged thumbnail: that tile is left out
                log.warning("tile %d: thumbnail unreadable (%s); left out of the imagery pyramid", i, err)
                images.append(None)
        sizes = np.array([im.size if im is not None else (1, 1) for im in images])
        try:
            coeffs_all = _homographies(px - lo[:, None, :], sizes[:, 0], sizes[:, 1])
        except np.linalg.LinAlgError:  # a degenerate footprint among them: solved one by one, it left out
            coeffs_all = np.full((len(tiles), 8), np.nan)
            for j in range(len(tiles)):
                try:
                    coeffs_all[j] = _homographies(px[j:j + 1] - lo[j], sizes[j, 0], sizes[j, 1])[0]
                except np.linalg.LinAlgError:
                    images[j] = None
        for j, img in enumerate(images):
            if img is None:
                continue
            w, h = int(hi[j, 0] - lo[j, 0]), int(hi[j, 1] - lo[j, 1])
            if w < 1 or h < 1:
                continue
            coeffs = coeffs_all[j]
            # Nearest: the thumbnail is already at about the drawn size, and no half-transparent edges
            # (which would leave seams between neighbouring tiles)
            warped = img.transform((w, h), Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.NEAREST)
            x, y = int(lo[j, 0]), int(lo[j, 1])
            # alpha_composite needs the picture inside the canvas: crop what lies outside this chunk
            cx0, cy0 = max(0, -x), max(0, -y)
            cx1, cy1 = min(w, CHUNK_PX - x), min(h, CHUNK_PX - y)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            canvas.alpha_composite(warped.crop((cx0, cy0, cx1, cy1)), dest=(x + cx0, y + cy0))
        return canvas

    def render(self, level: int, cx: int, cy: int, present: list[set[tuple[int, int]]]) -> Any:
        """Chunk (level, cx, cy), written to disk; returns its picture (None when it holds no tile)."""
        from PIL import Image

        if (cx, cy) not in present[level]:
            return None
        if level == 0:
            img = self.level0(cx, cy)
        else:
            double = Image.new("RGBA", (2 * CHUNK_PX, 2 * CHUNK_PX))
            for dy in (0, 1):
                for dx in (0, 1):
                    child = self.render(level - 1, 2 * cx + dx, 2 * cy + dy, present)
                    if child is not None:
                        double.paste(child, (dx * CHUNK_PX, dy * CHUNK_PX))
            img = _halve(double)
        if img is None or img.getextrema()[3][1] == 0:
            return None
        path = chunk_path(self.root, self.source, level, cx, cy)
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
        self.written[level].append([cx, cy])
        return img

    def build(self) -> list[list[list[int]]]:
        present = [set(self.cells)]
        while len(present) < self.levels and len(present[-1]) > 1:  # no level above the one-chunk one
            present.append({(cx // 2, cy // 2) for cx, cy in present[-1]})
        self.levels = len(present)
        self.written = self.written[:self.levels]
        for cx, cy in sorted(present[-1], key=lambda c: (c[1], c[0])):
            self.render(self.levels - 1, cx, cy, present)
        return [sorted(chunks, key=lambda c: (c[1], c[0])) for chunks in self.written]


def _overview_resolution(root: Path, entry: dict[str, Any]) -> float:
    """EPSG:3857 metres per pixel of a source's overview (infinity: it has none)."""
    from PIL import Image

    ov = entry.get("overview") or {}
    try:
        with Image.open(root / ov["file"]) as img:
            width = img.size[0]
        west, _, east, _ = ov["bounds_3857"]
        return (float(east) - float(west)) / max(1, width)
    except (OSError, KeyError, TypeError, ValueError):
        return float("inf")


def pyramid_plan(tile_width: float, overview_res: float) -> tuple[float, int]:
    """(level-0 resolution, number of levels) for a source whose tiles are ``tile_width`` EPSG:3857 metres
    wide; 0 levels when its thumbnails add too little over its overview."""
    res = tile_width / CELL_PX
    levels = 0
    while res * (2 ** levels) * MIN_GAIN <= overview_res and levels < 24:
        levels += 1
    return res, levels


def update_imagery_pyramid(root: str | Path) -> int:
    """Make the pyramid of every source that lacks an up-to-date one; returns how many were made. Call it
    while holding the atlas's lock (at the end of a build)."""
    from engine.atlas.format import open_atlas
    from engine.atlas.tile_index import tile_index_of

    root = Path(root)
    atlas = open_atlas(root)
    try:
        meta = read_pyramid_meta(root) or {"format": PYRAMID_FORMAT, "version": PYRAMID_VERSION, "sources": {}}
        source = np.asarray(atlas.tiles.source)
        if not len(source):
            return 0
        order = np.argsort(source, kind="stable")
        cuts = np.flatnonzero(np.diff(source[order])) + 1
        index = None
        made, dirty = 0, False
        for idx in np.split(order, cuts):
            s = int(source[idx[0]])
            entry = atlas.manifest["sources"][s] if 0 <= s < len(atlas.manifest["sources"]) else {}
            key = {"tiles": int(len(idx)), "path": str(entry.get("path", ""))}
            done = meta["sources"].get(str(s))
            if done is not None and {k: done.get(k) for k in key} == key:
                continue
            index = index or tile_index_of(atlas)
            sample = index.quads(idx[:: max(1, len(idx) // 4096)])
            tile_width = float(np.median(np.hypot(*(sample[:, 1] - sample[:, 0]).T)))
            overview_res = _overview_resolution(root, entry)
            res, levels = pyramid_plan(tile_width, overview_res)
            shutil.rmtree(root / PYRAMID_FOLDER / f"s{s}", ignore_errors=True)
            spec: dict[str, Any] = {**key, "res": res, "chunk_px": CHUNK_PX, "levels": [],
                                    "overview_res": overview_res if np.isfinite(overview_res) else None}
            if levels:
                builder = _SourceBuilder(root, atlas, index, s, idx, res, levels)
                spec["levels"] = builder.build()
                spec["origin"] = list(builder.origin)
                made += 1
            meta["sources"][str(s)] = spec
            dirty = True
            if levels:  # its chunks took a while: kept even if the build stops during the next source
                files.atomic_write_text(root / PYRAMID_META, json.dumps(meta))
                dirty = False
        if dirty:  # once for all the sources that need none (thousands of small GeoTIFFs: one write)
            files.atomic_write_text(root / PYRAMID_META, json.dumps(meta))
        return made
    finally:
        atlas.close()
