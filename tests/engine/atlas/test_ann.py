"""Search at scale (engine.atlas.ann): the ANN index and the compact heat map against exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.atlas import ann, open_atlas, sound_query
from engine.atlas.query import embedding_distances, top_k
from engine.atlas.synthetic import write_synthetic_atlas

pytest.importorskip("faiss", reason="FAISS is not installed (the scale extra)")


def _exact_top(atlas, query: np.ndarray, k: int = 10) -> np.ndarray:
    emb = np.asarray(atlas.tiles.embeddings, np.float64)
    return np.argsort(((emb - query) ** 2).sum(1), kind="stable")[:k]


def test_small_atlas_known_answers_and_incremental_updates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann, "ANN_THRESHOLD", 1000)
    root = write_synthetic_atlas(tmp_path / "a", 6000, dim=32, seed=3)
    assert ann.update_search_index(root)
    atlas = open_atlas(root)
    assert ann.search_index(atlas).indexed == 6000
    rng = np.random.default_rng(0)
    for i in rng.choice(6000, 20, replace=False):
        query = np.asarray(atlas.tiles.embeddings[i], np.float32)
        result = sound_query(atlas, query, k=10)
        assert result.top[0].index == i and result.top[0].distance == 0.0  # a tile finds itself
        assert [t.index for t in result.top] == list(_exact_top(atlas, query.astype(np.float64)))
    # Below the threshold nothing is built or used: exact search.
    assert not ann.update_search_index(root, threshold=10_000)
    assert ann.search_index(atlas, threshold=10_000) is None
    # A re-embedded generation (here: a new generation number) drops the old files and builds new ones.
    import json

    manifest = json.loads((root / "atlas.json").read_text())
    manifest["generation"] = 1
    for name in ("embedding", "sqnorm"):
        (root / "tiles" / f"{name}.0.f4").rename(root / "tiles" / f"{name}.1.f4")
    (root / "atlas.json").write_text(json.dumps(manifest))
    assert ann.update_search_index(root)
    assert ann.ann_path(root, 1).is_file() and not ann.ann_path(root, 0).is_file()
    assert not ann.codes_path(root, 0).exists()


def test_rows_added_after_the_index_are_searched_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setattr(ann, "ANN_THRESHOLD", 1000)
    full = write_synthetic_atlas(tmp_path / "full", 4000, dim=16, seed=5)
    # The same atlas counting only 3000 tiles, indexed, then "grown" to 4000 by a later build.
    manifest = json.loads((full / "atlas.json").read_text())
    manifest["tiles"]["count"] = 3000
    (full / "atlas.json").write_text(json.dumps(manifest))
    ann.update_search_index(full)
    manifest["tiles"]["count"] = 4000
    (full / "atlas.json").write_text(json.dumps(manifest))
    atlas = open_atlas(full)
    index = ann.search_index(atlas)
    # The compact codes cover only 3000 rows: the index is not used until it is updated.
    assert index is None
    ann.update_search_index(full)
    index = ann.search_index(open_atlas(full))
    assert index.indexed == 4000
    query = np.asarray(open_atlas(full).tiles.embeddings[3999])
    assert sound_query(open_atlas(full), query).top[0].index == 3999


def test_recall_at_10_on_a_200k_tile_atlas_and_the_heat_map_error_bound(tmp_path: Path) -> None:
    root = write_synthetic_atlas(tmp_path / "big", 200_000, dim=32, seed=1)
    assert ann.update_search_index(root)  # 200k is the default threshold
    atlas = open_atlas(root)
    index = ann.search_index(atlas)
    assert index is not None and index.indexed == 200_000
    rng = np.random.default_rng(7)
    emb = atlas.tiles.embeddings
    hits, worst_ratio = [], 0.0
    for j, i in enumerate(rng.choice(200_000, 30, replace=False)):
        query = np.asarray(emb[i], np.float32) + rng.normal(0, 0.3, 32).astype(np.float32)  # a nearby sound
        result = sound_query(atlas, query, k=10)
        exact = embedding_distances(emb, query, "euclidean", sqnorms=atlas.tiles.sqnorms)
        truth = set(top_k(exact, 10).tolist())
        hits.append(len(truth & {t.index for t in result.top}) / 10)
        if j >= 6:
            continue
        # The heat map from one-byte codes: squared distances within the rounding bound.
        err = np.abs(result.distances.astype(np.float64) ** 2 - exact.astype(np.float64) ** 2)
        bound = index.squared_distance_bound(query)
        worst_ratio = max(worst_ratio, float(err.max() / bound))
        assert np.corrcoef(result.scores, 1 / (1 + exact))[0, 1] > 0.999
    assert np.mean(hits) >= 0.95
    assert worst_ratio <= 1.0 + 1e-3  # float32 round-off on top of the bound


def test_without_faiss_the_top_k_stays_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(ann, "ANN_THRESHOLD", 1000)
    monkeypatch.setitem(sys.modules, "faiss", None)  # "import faiss" raises ImportError
    root = write_synthetic_atlas(tmp_path / "a", 3000, dim=16, seed=9)
    assert ann.update_search_index(root)
    assert not ann.ann_path(root, 0).exists() and ann.codes_path(root, 0).is_file()
    atlas = open_atlas(root)
    assert ann.search_index(atlas).ann is None
    query = np.asarray(atlas.tiles.embeddings[1234], np.float32) + 0.05
    assert [t.index for t in sound_query(atlas, query).top] == list(_exact_top(atlas, query.astype(np.float64)))
