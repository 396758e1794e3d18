"""Predicted soundscape maps on the demo world: held-out Spearman rho of each index, embedding-space
prediction against a geographic baseline, how predicted biophony / anthropophony follow the land cover,
and the time to compute an index map over a 50k-tile atlas.

First build the demo world and its atlas with the shipped demo bundle (indices are stored by the build):

  soundscape-engine demo-world --out WORLD
  soundscape-engine atlas build --bundle resources/demo-bundle --out ATLAS --imagery WORLD/mosaic.tif \
      --recordings WORLD/pairs.csv
  python bench/soundscape_maps.py --atlas ATLAS --world WORLD

Held out: the world's ``test`` split (spatial blocks); the predictors only see ``train`` and ``val``
recordings. A held-out recording's prediction is the prediction for the atlas tile that contains it
(what the map shows there); it is compared with the recording's measured index.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.atlas import locate_tile, open_atlas  # noqa: E402
from engine.ecology.maps import (  # noqa: E402
    SoundscapePredictor,
    inverse_square_weights,
    nearest_rows,
    weighted_prediction,
)
from engine.geo import haversine_km  # noqa: E402

NATURE = ("forest", "meadow", "wetland", "farmland")
HUMAN = ("urban", "road")
WATER = ("sea", "beach")


def ridge_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Ridge regression on standardised embeddings; the penalty chosen by 5-fold CV on the training rows."""
    ok = np.isfinite(train_y)
    x, y = train_x[ok].astype(np.float64), train_y[ok]
    mu, sd = x.mean(0), x.std(0) + 1e-9
    xs, ts = (x - mu) / sd, (test_x - mu) / sd
    folds = np.arange(len(y)) % 5
    best, best_err = 1.0, np.inf
    for lam in (0.1, 1.0, 10.0, 100.0, 1000.0):
        err = 0.0
        for f in range(5):
            a, b = folds != f, folds == f
            w = np.linalg.solve(xs[a].T @ xs[a] + lam * np.eye(xs.shape[1]), xs[a].T @ (y[a] - y[a].mean()))
            err += np.sum((xs[b] @ w + y[a].mean() - y[b]) ** 2)
        if err < best_err:
            best, best_err = lam, err
    w = np.linalg.solve(xs.T @ xs + best * np.eye(xs.shape[1]), xs.T @ (y - y.mean()))
    return ts @ w + y.mean()


def rho(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic) if ok.sum() > 2 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atlas", type=Path, required=True)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--tiles", type=int, default=50_000, help="tiles of the synthetic timing atlas")
    parser.add_argument("--timing-only", action="store_true", help="only the 50k-tile timing")
    args = parser.parse_args()

    atlas = open_atlas(args.atlas)
    ind = atlas.indices
    if ind is None:
        sys.exit(f"{args.atlas} has no indices: soundscape-engine atlas indices --atlas {args.atlas}")
    with open(args.world / "pairs.csv", newline="") as f:
        pairs = {row["id"]: row for row in csv.DictReader(f)}
    recs = atlas.recordings
    split = np.array([pairs[i]["split"] for i in recs.ids])
    lc = {c: np.array([float(pairs[i][f"lc_{c}"]) for i in recs.ids]) for c in NATURE + HUMAN + WATER}
    train, test = np.flatnonzero(split != "test"), np.flatnonzero(split == "test")
    if args.timing_only:
        timing(args, atlas, ind, recs)
        return
    tiles = np.array([locate_tile(atlas, recs.lon[i], recs.lat[i]) for i in test], dtype=object)
    keep = np.array([t is not None for t in tiles])
    test, tiles = test[keep], tiles[keep].astype(np.int64)
    print(f"atlas {atlas.describe()}; {len(train)} train+val recordings, {len(test)} held-out test recordings "
          f"inside a tile; indices {ind.library}, windows {ind.window_s} s")
    tile_emb = np.asarray(atlas.tiles.embeddings[tiles])
    rec_emb = np.asarray(recs.embeddings)

    names = [n for n in ind.names if n not in ("rBA",)]
    results: dict[str, dict[str, float]] = {n: {} for n in names}
    for k in args.k:
        idx, dist = nearest_rows(tile_emb, rec_emb[train], k, atlas.distance)
        w = inverse_square_weights(dist)
        km = haversine_km(recs.lon[test][:, None], recs.lat[test][:, None], recs.lon[train][None, :],
                          recs.lat[train][None, :])
        gidx = np.argsort(km, axis=1)[:, :k]
        gw = 1.0 / (np.take_along_axis(km, gidx, axis=1) + 0.01)  # inverse distance (km), 10 m floor
        for n in names:
            measured = ind.column(n)
            pred, _ = weighted_prediction(train[idx], w, measured)
            geo, _ = weighted_prediction(train[gidx], gw, measured)
            results[n][f"emb k={k}"] = rho(pred, measured[test])
            results[n][f"geo k={k}"] = rho(geo, measured[test])
    for n in names:
        measured = ind.column(n)
        results[n]["ridge"] = rho(ridge_predict(rec_emb[train], measured[train], tile_emb), measured[test])
    cols = list(next(iter(results.values())).keys())
    print("\nSpearman rho, predicted vs measured index on held-out recordings (emb: k nearest recordings in "
          "embedding space to the tile; geo: k nearest on the ground; ridge: ridge head on the embeddings)")
    print(f"{'index':<22}" + "".join(f"{c:>10}" for c in cols))
    for n in names:
        print(f"{n:<22}" + "".join(f"{results[n][c]:>10.3f}" for c in cols))

    k = 32
    idx, dist = nearest_rows(tile_emb, rec_emb[train], k, atlas.distance)
    w = inverse_square_weights(dist)
    nature = sum(lc[c][test] for c in NATURE)
    human = sum(lc[c][test] for c in HUMAN)
    water = sum(lc[c][test] for c in WATER)
    print(f"\nComposition vs land cover around the held-out recordings (Spearman rho; emb k={k}):")
    for share, cover, label in (("biophony_share", nature, "forest+meadow+wetland+farmland"),
                                ("anthropophony_share", human, "urban+road"),
                                ("geophony_share", water, "sea+beach")):
        measured = ind.column(share)
        pred, _ = weighted_prediction(train[idx], w, measured)
        print(f"  {share:<20} vs {label:<32} predicted {rho(pred, cover):6.3f}   measured {rho(measured[test], cover):6.3f}")

    timing(args, atlas, ind, recs)


def timing(args: argparse.Namespace, atlas, ind, recs) -> None:
    """Time an index map over a synthetic 50k-tile atlas with the real recordings' embeddings and indices."""
    import os

    rec_emb = np.asarray(recs.embeddings)
    rng = np.random.default_rng(0)
    fake_tiles = rec_emb[rng.integers(0, len(rec_emb), args.tiles)] + rng.normal(0, 0.1, (args.tiles, rec_emb.shape[1]))
    fake_tiles = fake_tiles.astype(np.float32)
    sq = np.einsum("ij,ij->i", fake_tiles, fake_tiles)

    class _FakeAtlas:
        path = args.atlas
        distance = atlas.distance
        indices = ind
        recordings = recs
        tiles = type("T", (), {"embeddings": fake_tiles, "sqnorms": sq})()

    times = []
    for _ in range(3):
        p = SoundscapePredictor(_FakeAtlas(), k=32)
        t0 = time.perf_counter()
        p.layer("ACI")
        t1 = time.perf_counter()
        p.layer("NDSI")
        t2 = time.perf_counter()
        times.append((t1 - t0, t2 - t1))
    first, more = min(t[0] for t in times), min(t[1] for t in times)
    print(f"\n(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"\nindex map over {args.tiles:,} tiles x {len(rec_emb):,} recordings (k=32, best of 3): first layer "
          f"{first * 1000:.0f} ms (nearest recordings of every tile + the layer; 'atlas indices' stores them), "
          f"each further layer, or any layer from the stored neighbours, {more * 1000:.1f} ms")


if __name__ == "__main__":
    main()
