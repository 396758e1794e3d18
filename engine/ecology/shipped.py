"""Acoustic indices shipped with the app for the seeded demo world (numpy and the standard library only).

The app builds its demo atlas with ``build_atlas`` and cannot compute indices (scikit-maad is in the
engine extra), so the indices of the default demo world's recordings (seed 0) are computed once with
``soundscape-engine indices`` and shipped in ``resources/``: ``demo-indices.csv`` (``id, hour`` and
the index columns, exactly as the engine's indices table wrote them) and ``demo-indices.json`` (what
they are for: the world's seed, size, recording count and the SHA-256 of its ``pairs.csv``; and how
they were computed: the library, its parameters, window and summary).

:func:`import_shipped_indices` stores them in an atlas built from that world, matched by recording id,
only when the world is the one they were computed for (same seed, size and ``pairs.csv`` bytes); any
other world gets no indices rather than wrong ones. Made with::

    soundscape-engine demo-world --out W --size default --seed 0
    soundscape-engine indices --recordings W/pairs.csv --out W-indices/indices.csv
    python -m engine.ecology.shipped --world W --indices W-indices/indices.csv --out resources
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DatasetError

log = logging.getLogger(__name__)

SHIPPED_CSV = "demo-indices.csv"
SHIPPED_JSON = "demo-indices.json"
FORMAT = "soundscape-demo-indices"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _world_info(world: Path) -> dict[str, Any]:
    try:
        return json.loads((world / "world.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DatasetError(world, f"is not a demo world ({err})", "pass the folder 'demo-world' wrote") from None


def write_shipped_indices(world: str | Path, indices_csv: str | Path, out: str | Path) -> tuple[Path, Path]:
    """Write ``demo-indices.csv`` / ``.json`` into ``out`` from the engine's indices table of ``world``.

    Args:
        world: the demo world folder (``world.json``, ``pairs.csv``).
        indices_csv: what ``soundscape-engine indices --recordings WORLD/pairs.csv`` wrote (its JSON
            companion ``indices.json`` beside it gives the parameters).
    """
    from engine.files import atomic_write_bytes

    world, indices_csv, out = Path(world), Path(indices_csv), Path(out)
    info = _world_info(world)
    meta = json.loads(indices_csv.with_suffix(".json").read_text(encoding="utf-8"))
    with open(indices_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    from engine.ecology.names import INDEX_NAMES

    names = [n for n in INDEX_NAMES if n in header]
    lines = [",".join(["id", "hour", *names])] + [",".join([r["id"], r["hour"], *(r[n] for n in names)]) for r in rows]
    csv_bytes = ("\n".join(lines) + "\n").encode("utf-8")
    manifest = {"format": FORMAT, "version": 1, "seed": info["seed"], "size": info["size"],
                "recordings": len(rows), "pairs_sha256": file_sha256(world / "pairs.csv"), "names": names,
                "library": meta.get("library") or meta.get("scikit_maad", ""),
                "parameters": meta.get("parameters", {}), "window_s": meta.get("window_s"),
                "summary": meta.get("summary", "mean")}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / SHIPPED_CSV, lambda f: f.write(csv_bytes))
    atomic_write_bytes(out / SHIPPED_JSON, lambda f: f.write(json.dumps(manifest, indent=2).encode("utf-8")))
    return out / SHIPPED_CSV, out / SHIPPED_JSON


def read_shipped_indices(folder: str | Path) -> tuple[dict[str, Any], list[str], np.ndarray, np.ndarray]:
    """(manifest, recording ids, values (R, K) float64 with NaN for empty cells, hour (R,))."""
    folder = Path(folder)
    manifest = json.loads((folder / SHIPPED_JSON).read_text(encoding="utf-8"))
    names = list(manifest["names"])
    ids, values, hours = [], [], []
    with open(folder / SHIPPED_CSV, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ids.append(row["id"])
            hours.append(float(row["hour"]) if row["hour"] else math.nan)
            values.append([float(row[n]) if row[n] else math.nan for n in names])
    return manifest, ids, np.array(values, np.float64).reshape(-1, len(names)), np.array(hours, np.float64)


def shipped_mismatch(world: str | Path, folder: str | Path) -> str | None:
    """Why the shipped indices in ``folder`` are not those of ``world`` (None: they are)."""
    world, folder = Path(world), Path(folder)
    if not (folder / SHIPPED_JSON).is_file() or not (folder / SHIPPED_CSV).is_file():
        return f"no shipped indices in {folder}"
    manifest = json.loads((folder / SHIPPED_JSON).read_text(encoding="utf-8"))
    info = _world_info(world)
    if (info.get("seed"), info.get("size")) != (manifest.get("seed"), manifest.get("size")):
        return (f"the world is seed {info.get('seed')} size {info.get('size')}; the shipped indices are for "
                f"seed {manifest.get('seed')} size {manifest.get('size')}")
    if file_sha256(world / "pairs.csv") != manifest.get("pairs_sha256"):
        return "the world's pairs.csv differs from the one the shipped indices were computed for"
    return None


def import_shipped_indices(atlas_path: str | Path, world: str | Path, folder: str | Path) -> str:
    """Store the shipped indices of ``world`` in the atlas built from it (and every tile's nearest
    recordings for the maps), unless the atlas has indices already or the world is another one.

    Returns:
        What happened, one line (for the log and the window).
    """
    from engine.atlas.format import open_atlas
    from engine.atlas.indices import IndicesAppender, read_neighbours, write_neighbours
    from engine.atlas.writer import AtlasWriter
    from engine.ecology.maps import DEFAULT_K, SoundscapePredictor

    reason = shipped_mismatch(world, folder)
    if reason is not None:
        return f"demo atlas without acoustic indices: {reason}"
    atlas = open_atlas(atlas_path)
    if atlas.indices is not None:
        return "the demo atlas has its acoustic indices"
    manifest, ids, values, hours = read_shipped_indices(folder)
    row_of = {rid: i for i, rid in enumerate(ids)}
    rec_ids = [str(r) for r in atlas.recordings.ids]
    order = np.array([row_of.get(r, -1) for r in rec_ids], np.int64)
    found = order >= 0
    names = list(manifest["names"])
    table = np.full((len(rec_ids), len(names)), np.nan)
    hour = np.full(len(rec_ids), np.nan)
    table[found] = values[order[found]]
    hour[found] = hours[order[found]]
    meta = {"parameters": manifest.get("parameters", {}), "library": manifest.get("library", ""),
            "window_s": manifest.get("window_s"), "summary": manifest.get("summary", "mean"),
            "source": "shipped demo indices"}
    with AtlasWriter(atlas_path, bundle=None, create=False) as writer:  # type: ignore[arg-type] - no embeddings
        appender = IndicesAppender(writer, names, meta)
        try:
            appender.append(table, hour)
        finally:
            appender.close()
        fresh = open_atlas(atlas_path)
        if len(fresh.tiles) and len(fresh.recordings) and read_neighbours(fresh, DEFAULT_K) is None:
            idx, w = SoundscapePredictor(fresh, DEFAULT_K).neighbours()
            write_neighbours(writer, idx, w, DEFAULT_K)
    return f"acoustic indices of {int(found.sum())} of {len(rec_ids)} demo recordings added from the shipped table"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the shipped demo indices from the engine's indices table")
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--indices", type=Path, required=True, help="indices.csv of WORLD/pairs.csv")
    parser.add_argument("--out", type=Path, default=Path("resources"))
    args = parser.parse_args(argv)
    for path in write_shipped_indices(args.world, args.indices, args.out):
        print(f"{path}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
