"""Synthetic atlases of any size in the real format, for benchmarks and tests of search at scale
(torch-free, numpy only).

The embeddings have the structure real ones have, not uniform noise: tiles fall into land-cover-like
classes laid out in spatially smooth patches (the class is the arg-max of a few smooth random fields over
the grid), each class has its own centre, and within a class the embedding drifts smoothly across the
map along a few directions, plus a little per-tile noise. So near neighbours in embedding space are
mostly nearby tiles of one class, as in a real atlas, and the nearest-neighbour problem is as hard.

Written row by row of the grid (bounded memory, disk-backed), with one shared thumbnail.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from engine.atlas.format import ATLAS_FORMAT, ATLAS_VERSION, MANIFEST, THUMBNAILS, tile_array_path
from engine.atlas.source_log import write_source_log

SYNTHETIC_BUNDLE_ID = "synthetic-" + "0" * 54


def _smooth_fields(rng: np.random.Generator, n: int, waves: int = 6) -> np.ndarray:
    """(n, waves, 3): amplitude, frequency x, frequency y, phase of smooth random fields."""
    return np.stack([rng.normal(size=(n, waves)), rng.uniform(0.5, 4, (n, waves)) * rng.choice([-1, 1], (n, waves)),
                     rng.uniform(0.5, 4, (n, waves)), rng.uniform(0, 2 * np.pi, (n, waves))], axis=2)


def _field(params: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Evaluate fields at grid fractions u, v in [0, 1): (len(u), n)."""
    amp, fx, fy, phase = (params[..., i] for i in range(4))
    arg = (u[:, None, None] * fx + v[:, None, None] * fy) * 2 * np.pi + phase
    return (amp * np.sin(arg)).sum(axis=2)


class _World:
    """The smooth fields of one synthetic atlas (a grid ``cols`` x ``rows``)."""

    def __init__(self, n: int, dim: int, classes: int, seed: int, cols: int | None) -> None:
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.cols = cols or int(np.ceil(np.sqrt(n)))
        self.rows = int(np.ceil(n / self.cols))
        self.centres = rng.normal(size=(classes, dim)).astype(np.float32) * 1.0
        self.drift_dirs = rng.normal(size=(4, dim)).astype(np.float32) * 0.35
        self.class_fields = _smooth_fields(rng, classes)
        self.drift_fields = _smooth_fields(rng, 4)

    def labels(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.argmax(_field(self.class_fields, u, v), axis=1)

    def embeddings(self, ids: np.ndarray, noise_key: int) -> np.ndarray:
        u, v = (ids % self.cols) / self.cols, (ids // self.cols) / self.rows
        out = self.centres[self.labels(u, v)] + _field(self.drift_fields, u, v).astype(np.float32) @ self.drift_dirs
        noise = np.random.default_rng([self.seed, noise_key]).normal(size=out.shape).astype(np.float32)
        out += 0.15 * noise
        return out.astype(np.float32)


def synthetic_embeddings(n: int, dim: int = 128, classes: int = 48, seed: int = 0, cols: int | None = None,
                         start: int = 0, stop: int | None = None) -> np.ndarray:
    """Rows ``start:stop`` of the embeddings of an ``n``-tile synthetic atlas (a grid ``cols`` wide)."""
    stop = n if stop is None else min(stop, n)
    return _World(n, dim, classes, seed, cols).embeddings(np.arange(start, stop), start)


def _tile_order(n: int, cols: int, rows: int, side: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Grid ids in the order a build of ``side`` x ``side`` sources writes them (source by source, each in
    scan order), each tile's source, and the sources' block size in tiles."""
    block_c, block_r = -(-cols // side), -(-rows // side)
    r, c = np.divmod(np.arange(rows * cols), cols)
    source = (r // block_r) * side + c // block_c
    ids = np.lexsort((c, r, source))  # by source, then row, then column
    ids = ids[ids < n]
    return ids, source[ids], block_c, block_r


def _overview(world: _World, c0: int, r0: int, c1: int, r1: int, px: int = 32) -> np.ndarray:
    """A picture of grid cells [c0, c1) x [r0, r1): each land-cover class in its own colour (``px`` a side,
    shown 4x larger: the fields are smooth)."""
    palette = np.random.default_rng(world.seed + 1).integers(40, 220, (len(world.centres), 3)).astype(np.uint8)
    h = max(1, round(px * (r1 - r0) / max(c1 - c0, r1 - r0)))
    w = max(1, round(px * (c1 - c0) / max(c1 - c0, r1 - r0)))
    vv, uu = np.meshgrid(r0 + (np.arange(h) + 0.5) * (r1 - r0) / h, c0 + (np.arange(w) + 0.5) * (c1 - c0) / w,
                         indexing="ij")
    label = world.labels(uu.ravel() / world.cols, vv.ravel() / world.rows).reshape(h, w)
    label = np.repeat(np.repeat(label, 4, axis=0), 4, axis=1)
    return np.concatenate([palette[label], np.full((*label.shape, 1), 255, np.uint8)], axis=2)


def write_synthetic_atlas(out: str | Path, n: int, dim: int = 128, seed: int = 0, chunk: int = 262_144,
                          west: float = 6.0, north: float = 55.0, tile_deg: float = 0.002,
                          sources: int = 1) -> Path:
    """Write an ``n``-tile atlas (no recordings) with structured embeddings; returns its folder.

    ``sources`` > 1: the grid is cut into about that many square sources (a mosaic of GeoTIFFs, as a
    national orthophoto comes), written source by source in scan order as a build does, each with its
    (w x h tiles) grid and an overview picture; the atlas-wide overview mosaic is made too."""
    from PIL import Image

    from engine.geo import lonlat_to_web_mercator

    out = Path(out)
    (out / "tiles").mkdir(parents=True, exist_ok=True)
    world = _World(n, dim, 48, seed, None)
    cols = world.cols
    side = max(1, int(round(np.sqrt(sources))))
    order, tile_source, block_c, block_r = _tile_order(n, cols, world.rows, side)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 120, 60)).save(buf, "JPEG")
    jpeg = buf.getvalue()
    (out / THUMBNAILS).write_bytes(jpeg)
    names = ["lon", "lat", "footprint", "source", "grid", "thumb"]
    files = {name: open(tile_array_path(out, name), "wb") for name in names}  # noqa: SIM115 - closed below
    files["embedding"] = open(tile_array_path(out, "embedding", 0), "wb")  # noqa: SIM115
    files["sqnorm"] = open(tile_array_path(out, "sqnorm", 0), "wb")  # noqa: SIM115
    try:
        for start in range(0, n, chunk):
            ids = order[start:start + chunk]
            c, r = ids % cols, ids // cols
            x0, y0 = west + c * tile_deg, north - r * tile_deg
            x1, y1 = x0 + tile_deg, y0 - tile_deg
            fp = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1),
                           np.stack([x0, y1], 1)], axis=1)
            emb = world.embeddings(ids, start)
            src = tile_source[start:start + chunk]
            cell = np.stack([c - (src % side) * block_c, r - (src // side) * block_r], 1)
            values = {"lon": (x0 + x1) / 2, "lat": (y0 + y1) / 2, "footprint": fp, "source": src,
                      "grid": cell.astype("<i4"), "thumb": np.tile(np.array([[0, len(jpeg)]], "<i8"), (len(ids), 1)),
                      "embedding": emb, "sqnorm": np.einsum("ij,ij->i", emb, emb)}
            dtypes = {"lon": "<f8", "lat": "<f8", "footprint": "<f8", "source": "<i4", "grid": "<i4",
                      "thumb": "<i8", "embedding": "<f4", "sqnorm": "<f4"}
            for name, f in files.items():
                f.write(np.ascontiguousarray(values[name], dtype=dtypes[name]).tobytes())
    finally:
        for f in files.values():
            f.close()
    counts = np.bincount(tile_source, minlength=side * side)
    entries = []
    for k in np.flatnonzero(counts):
        entry = {"index": len(entries), "path": f"synthetic-{k}", "crs": "EPSG:4326", "tiles": int(counts[k]),
                 "status": "complete", "tile_px": [8, 8], "tile_size_m": None, "error": None, "overview": None}
        if side > 1:
            c0, r0 = int(k % side) * block_c, int(k // side) * block_r
            c1, r1 = min(cols, c0 + block_c), min(world.rows, r0 + block_r)
            (ox0, ox1), (oy0, oy1) = lonlat_to_web_mercator(
                [west + c0 * tile_deg, west + c1 * tile_deg], [north - r1 * tile_deg, north - r0 * tile_deg])
            name = f"overviews/source-{len(entries)}.png"
            (out / "overviews").mkdir(exist_ok=True)
            Image.fromarray(_overview(world, c0, r0, c1, r1), "RGBA").save(out / name)
            entry["overview"] = {"file": name, "bounds_3857": [float(ox0), float(oy0), float(ox1), float(oy1)]}
        entries.append(entry)
    manifest = {"format": ATLAS_FORMAT, "format_version": ATLAS_VERSION, "bundle_id": SYNTHETIC_BUNDLE_ID,
                "bundle_path": "", "embedding_dim": dim, "distance": "euclidean", "image_size": 96, "generation": 0,
                "created_at": "", "updated_at": "", "tiling": {"part_tiles": chunk},
                "tiles": {"count": n, "thumbnail_bytes": len(jpeg)}, "recordings": {"count": 0, "meta_bytes": 0},
                "source_log": write_source_log(out, entries), "recording_tables": [], "reembed": None}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    from engine.atlas.overview_mosaic import update_overview_mosaic
    from engine.atlas.tile_index import update_tile_index

    update_tile_index(out)  # as a build does
    update_overview_mosaic(out)
    return out
