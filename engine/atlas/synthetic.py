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


def synthetic_embeddings(n: int, dim: int = 128, classes: int = 48, seed: int = 0, cols: int | None = None,
                         start: int = 0, stop: int | None = None) -> np.ndarray:
    """Rows ``start:stop`` of the embeddings of an ``n``-tile synthetic atlas (a grid ``cols`` wide)."""
    rng = np.random.default_rng(seed)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    centres = rng.normal(size=(classes, dim)).astype(np.float32) * 1.0
    drift_dirs = rng.normal(size=(4, dim)).astype(np.float32) * 0.35
    class_fields = _smooth_fields(rng, classes)
    drift_fields = _smooth_fields(rng, 4)
    stop = n if stop is None else min(stop, n)
    ids = np.arange(start, stop)
    u, v = (ids % cols) / cols, (ids // cols) / rows
    label = np.argmax(_field(class_fields, u, v), axis=1)
    out = centres[label] + _field(drift_fields, u, v).astype(np.float32) @ drift_dirs
    noise = np.random.default_rng([seed, start]).normal(size=out.shape).astype(np.float32)
    out += 0.15 * noise
    return out.astype(np.float32)


def write_synthetic_atlas(out: str | Path, n: int, dim: int = 128, seed: int = 0, chunk: int = 262_144,
                          west: float = 6.0, north: float = 55.0, tile_deg: float = 0.002) -> Path:
    """Write an ``n``-tile atlas (no recordings, one source) with structured embeddings; returns its folder."""
    from PIL import Image

    out = Path(out)
    (out / "tiles").mkdir(parents=True, exist_ok=True)
    cols = int(np.ceil(np.sqrt(n)))
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
            ids = np.arange(start, min(start + chunk, n))
            c, r = ids % cols, ids // cols
            x0, y0 = west + c * tile_deg, north - r * tile_deg
            x1, y1 = x0 + tile_deg, y0 - tile_deg
            fp = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1),
                           np.stack([x0, y1], 1)], axis=1)
            emb = synthetic_embeddings(n, dim, seed=seed, cols=cols, start=start, stop=start + chunk)
            values = {"lon": (x0 + x1) / 2, "lat": (y0 + y1) / 2, "footprint": fp,
                      "source": np.zeros(len(ids), "<i4"), "grid": np.stack([c, r], 1).astype("<i4"),
                      "thumb": np.tile(np.array([[0, len(jpeg)]], "<i8"), (len(ids), 1)),
                      "embedding": emb, "sqnorm": np.einsum("ij,ij->i", emb, emb)}
            dtypes = {"lon": "<f8", "lat": "<f8", "footprint": "<f8", "source": "<i4", "grid": "<i4",
                      "thumb": "<i8", "embedding": "<f4", "sqnorm": "<f4"}
            for name, f in files.items():
                f.write(np.ascontiguousarray(values[name], dtype=dtypes[name]).tobytes())
    finally:
        for f in files.values():
            f.close()
    manifest = {"format": ATLAS_FORMAT, "format_version": ATLAS_VERSION, "bundle_id": SYNTHETIC_BUNDLE_ID,
                "bundle_path": "", "embedding_dim": dim, "distance": "euclidean", "image_size": 96, "generation": 0,
                "created_at": "", "updated_at": "", "tiling": {"part_tiles": chunk},
                "tiles": {"count": n, "thumbnail_bytes": len(jpeg)}, "recordings": {"count": 0, "meta_bytes": 0},
                "sources": [{"index": 0, "path": "synthetic", "crs": "EPSG:4326", "tiles": n, "status": "complete",
                             "tile_px": [8, 8], "tile_size_m": None, "error": None, "overview": None}],
                "recording_tables": [], "reembed": None}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    from engine.atlas.tile_index import update_tile_index

    update_tile_index(out)  # as a build does
    return out
