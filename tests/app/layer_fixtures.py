"""An atlas with acoustic indices for the layer and export tests: the real test atlas (real Landsat scene,
real recordings) with index values stored through the engine's own atlas format, some of them undefined
(NaN, as for a silent recording), and every tile's 3 nearest recordings stored as the maps' neighbours,
so that some tiles have no value of an index (all their neighbours lack it)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

INDEX_NAMES = ["ACI", "NDSI", "BI", "biophony_share"]
NAN_INDEX = "BI"  # undefined for the recordings nearest to tile 0, so tile 0 has no BI


def add_test_indices(atlas_path: Path, k_stored: int = 3, seed: int = 7) -> None:
    """Store seeded index values (and the start hours the file names give) in the atlas at ``atlas_path``."""
    from engine.atlas.format import open_atlas
    from engine.atlas.indices import IndicesAppender, write_neighbours
    from engine.atlas.writer import AtlasWriter
    from engine.ecology.maps import DEFAULT_K, inverse_square_weights, nearest_rows
    from engine.ecology.table import hour_of_day, start_from_name

    atlas = open_atlas(atlas_path)
    m = len(atlas.recordings)
    rng = np.random.default_rng(seed)
    values = np.column_stack([rng.uniform(100, 500, m), rng.uniform(-1, 1, m), rng.uniform(0, 80, m),
                              rng.uniform(0, 1, m)])
    idx, dist = nearest_rows(atlas.tiles.embeddings, atlas.recordings.embeddings, k_stored, atlas.distance)
    values[idx[0], INDEX_NAMES.index(NAN_INDEX)] = np.nan
    hours = np.array([hour_of_day(start_from_name(p)) for p in atlas.recordings.paths], np.float64)
    with AtlasWriter(atlas_path, bundle=None, create=False) as writer:  # type: ignore[arg-type]
        appender = IndicesAppender(writer, INDEX_NAMES, {"parameters": {"test": True}, "library": "test values",
                                                         "window_s": None, "summary": "mean"})
        appender.append(values, hours)
        appender.close()
        write_neighbours(writer, idx, inverse_square_weights(dist), DEFAULT_K)


def make_indices_atlas(out: Path, built_atlas: Path) -> Path:
    shutil.copytree(built_atlas, out)
    add_test_indices(out)
    return out


def folder_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (to show a flow changed nothing there)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
