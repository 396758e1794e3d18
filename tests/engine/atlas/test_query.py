"""Atlas queries on embeddings and places with a known answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod

from engine.atlas import locate_tile, open_atlas, sound_query, tile_soundscape
from engine.atlas.query import embedding_distances, nearest_recordings, scores_from_distances, top_k
from engine.atlas.writer import AtlasWriter
from engine.bundle.format import load_bundle
from engine.errors import UserInputError
from tests.engine.atlas.handmade import HandmadeBundle, make_bundle

GEOD = Geod(ellps="WGS84")


def _square(lon0: float, lat0: float, size: float = 1.0) -> np.ndarray:
    return np.array([[lon0, lat0 + size], [lon0 + size, lat0 + size], [lon0 + size, lat0], [lon0, lat0]])


def _write_atlas(root: Path, bundle_dir: Path, tile_emb: np.ndarray, rec_emb: np.ndarray,
                 rec_lonlat: np.ndarray) -> None:
    """A 3 x 3 grid of 1-degree tiles (10-13 E, 40-43 N), row-major from the north-west, and recordings."""
    bundle = load_bundle(bundle_dir)
    with AtlasWriter(root, bundle, {"thumbnail_px": 8}) as w:
        fps = np.stack([_square(10 + c, 42 - r) for r in range(3) for c in range(3)])
        lon, lat = fps[:, :, 0].mean(1), fps[:, :, 1].mean(1)
        grid = np.array([[c, r] for r in range(3) for c in range(3)])
        w.append_tiles(lon, lat, fps, 0, grid, [b"jpeg"] * 9, tile_emb)
        w.append_recordings([{"id": f"r{i}", "lon": float(x), "lat": float(y), "path": f"/rec/{i}.wav",
                              "title": f"recording {i}", "duration": 10.0, "table": 0}
                             for i, (x, y) in enumerate(rec_lonlat)], rec_emb)
        w.manifest["sources"].append({"index": 0, "path": "/grid.tif", "status": "complete", "tiles": 9,
                                      "tile_px": [1, 1], "overview": None})
        w.commit()


@pytest.fixture()
def atlas(tmp_path: Path, bundle: HandmadeBundle):
    rng = np.random.default_rng(3)
    tiles = rng.normal(size=(9, 8)).astype(np.float32)
    recs = rng.normal(size=(6, 8)).astype(np.float32)
    recs[4] = tiles[7] + 0.01  # recording 4 sounds like tile 7
    lonlat = np.array([[10.5, 42.5], [11.2, 41.9], [12.9, 40.1], [15.0, 45.0], [-3.0, 51.0], [11.6, 42.6]])
    _write_atlas(tmp_path / "a", bundle.path, tiles, recs, lonlat)
    return open_atlas(tmp_path / "a", bundle.path), tiles, recs, lonlat


def test_locate_tile(atlas) -> None:
    a, *_ = atlas
    assert locate_tile(a, 10.5, 42.5) == 0  # north-west tile
    assert locate_tile(a, 12.99, 40.01) == 8  # south-east corner of the grid
    assert locate_tile(a, 11.5, 41.5) == 4
    assert locate_tile(a, 9.9, 41.5) is None and locate_tile(a, 11.5, 43.2) is None
    with pytest.raises(UserInputError, match="not a place on Earth"):
        locate_tile(a, 200.0, 0.0)


def test_tile_soundscape_known_neighbours(atlas) -> None:
    a, tiles, recs, lonlat = atlas
    best, nearest = tile_soundscape(a, 7, k=3)
    by_hand = np.argsort(np.linalg.norm(recs.astype(np.float64) - tiles[7], axis=1))[:3]
    assert [m.index for m in best] == list(by_hand) and best[0].id == "r4"
    assert best[0].distance == pytest.approx(0.01 * np.sqrt(8), rel=1e-3)
    assert best[0].score == pytest.approx(1 / (1 + best[0].distance), rel=1e-6)
    # Tile 7 is centred at (11.5 E, 40.5 N); distances on the ground by pyproj's ellipsoid (the atlas
    # uses a sphere: within 0.5 %).
    _, _, metres = GEOD.inv(np.full(6, 11.5), np.full(6, 40.5), lonlat[:, 0], lonlat[:, 1])
    order = np.argsort(metres)[:3]
    assert [m.index for m in nearest] == list(order)
    for m in nearest:
        assert m.km == pytest.approx(metres[m.index] / 1000, rel=5e-3)
        assert m.distance == pytest.approx(float(np.linalg.norm(recs[m.index] - tiles[7])), rel=1e-5)


def test_sound_query_scores_every_tile(atlas) -> None:
    a, tiles, recs, _ = atlas
    result = sound_query(a, recs[4], k=4)
    exact = np.linalg.norm(tiles.astype(np.float64) - recs[4], axis=1)
    np.testing.assert_allclose(result.distances, exact, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(result.scores, 1 / (1 + exact), rtol=1e-4)
    assert [t.index for t in result.top] == list(np.argsort(exact)[:4]) and result.top[0].index == 7
    assert (result.top[0].lon, result.top[0].lat) == (11.5, 40.5)
    assert result.top[0].distance == pytest.approx(exact[7], rel=1e-9)
    with pytest.raises(UserInputError, match="embed the query with the atlas's bundle"):
        sound_query(a, np.zeros(5), k=1)


def test_cosine_bundles_and_non_finite_embeddings(tmp_path: Path) -> None:
    cos_bundle = make_bundle(tmp_path / "cos", seed=5, dim=3, distance="cosine")
    tiles = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [-1, 0, 0], [0, 0, 1], [2, 0.1, 0], [0, 0, -1],
                      [1, 0, 1], [0.5, 0.5, 0.5]], np.float32)
    recs = np.array([[1, 0.2, 0], [np.nan, 0, 0]], np.float32)
    _write_atlas(tmp_path / "a", cos_bundle.path, tiles, recs, np.array([[10.1, 40.1], [10.2, 40.2]]))
    a = open_atlas(tmp_path / "a", cos_bundle.path)
    result = sound_query(a, np.array([1, 0, 0]), k=3)
    cosine = tiles @ np.array([1, 0, 0]) / np.linalg.norm(tiles, axis=1)
    np.testing.assert_allclose(result.scores, cosine, atol=1e-6)  # the cosine similarity
    assert [t.index for t in result.top] == [0, 5, 2]  # cos 1, 0.9988, 0.7071 (tile 2 ties tile 7: lower id)
    best, _ = tile_soundscape(a, 0, k=5)
    assert [m.index for m in best] == [0]  # the NaN recording never matches
    assert nearest_recordings(a, 10.2, 40.2, k=1)[0].id == "r1"  # but it is still a place on the map


def test_top_k_and_scores_helpers() -> None:
    d = np.array([3.0, np.inf, 1.0, 1.0, np.nan, 0.5], np.float32)
    d[~np.isfinite(d)] = np.inf
    assert list(top_k(d, 3)) == [5, 2, 3] and list(top_k(d, 10)) == [5, 2, 3, 0]
    ties = np.array([2.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    assert list(top_k(ties, 3)) == [5, 1, 2] and list(top_k(ties, 1)) == [5]
    np.testing.assert_allclose(scores_from_distances(np.array([0.0, 1.0, np.inf]), "euclidean"), [1, 0.5, 0])
    rng = np.random.default_rng(0)  # large enough for the sampled threshold; many ties and some inf
    big = np.round(rng.standard_normal(200_000), 2).astype(np.float32)
    big[rng.integers(0, big.size, 500)] = np.inf
    for k in (1, 7, 60):
        assert list(top_k(big, k)) == list(np.lexsort((np.arange(big.size), big))[:k])
    e = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(embedding_distances(e, np.array([0.0, 0.0]), "euclidean"), [5, 0])
