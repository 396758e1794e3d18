"""Reference answers computed directly from an atlas's arrays with numpy (not through the app)."""

from __future__ import annotations

import numpy as np


def distances(embeddings: np.ndarray, query: np.ndarray, distance: str) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if distance == "cosine":
        return 1.0 - (e @ q) / (np.linalg.norm(e, axis=1) * np.linalg.norm(q))
    return np.linalg.norm(e - q, axis=1)


def scores(d: np.ndarray, distance: str) -> np.ndarray:
    """The atlas's similarity: 1 / (1 + d) for Euclidean bundles, 1 - d for cosine ones."""
    return 1.0 - d if distance == "cosine" else 1.0 / (1.0 + d)


def best_recording(atlas: object, tile: int) -> int:
    d = distances(atlas.recordings.embeddings, atlas.tiles.embeddings[tile], atlas.distance)
    return int(np.argmin(d))


def top_tiles(atlas: object, query: np.ndarray, k: int) -> list[int]:
    d = distances(atlas.tiles.embeddings, query, atlas.distance)
    return [int(i) for i in np.argsort(d, kind="stable")[:k]]
