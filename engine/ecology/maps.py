"""Predicted soundscape maps: index and composition values for every tile of an atlas (numpy only; the app's
map layers use this module).

A tile's value of an index is the weighted mean of that index over the ``k`` recordings nearest to the
tile in the joint embedding space (the recordings that sound most like the tile looks), with weights
``1 / (d^2 + eps)`` on the embedding distances ``d``, and its uncertainty the weighted standard
deviation of those recordings' values. Undefined values (NaN) of a neighbour are left out of the mean;
a tile whose neighbours all lack a value gets NaN ("no value"). Composition shares are predicted the
same way, so a tile's three shares still sum to 1 where all are defined. The choice of the method (k
nearest in embedding space rather than a ridge head on the embeddings) and of ``k`` was made by
measurement: ``bench/soundscape_maps.py``.

The nearest recordings of every tile are found once (a matrix product over chunks of tiles) and reused
by every layer, so a layer costs a gather over (N, k). ``soundscape-engine atlas indices`` stores them in
the atlas for the default ``k`` (:func:`engine.atlas.indices.write_neighbours`), so an opened atlas draws
its first layer without the search; they are searched again when tiles, recordings or the embeddings
changed since.

Use::

    predictor = SoundscapePredictor(atlas)         # atlas.indices must be present (format version 2)
    layer = predictor.layer("ACI")                 # values (N,), uncertainty (N,)
    predictor.tile_values(i)                       # {name: (value, uncertainty)} for one tile
    predictor.hourly_profile(i, "ACI")             # 24-hour profile from the tile's matching recordings
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import AtlasError

DEFAULT_K = 32
PROFILE_K = 64
_CHUNK = 4096
_EPS = 1e-6


@dataclass(frozen=True)
class SoundscapeLayer:
    """Predicted values of one index for every tile, with their uncertainty (NaN: no value)."""

    name: str
    values: np.ndarray       # (N,) float32
    uncertainty: np.ndarray  # (N,) float32, weighted standard deviation over the neighbours


@dataclass(frozen=True)
class HourlyProfile:
    """An index by local hour of day (0..23): the weighted mean over matching recordings that started in
    that hour (NaN where none did), and how many recordings each hour holds."""

    name: str
    values: np.ndarray  # (24,)
    counts: np.ndarray  # (24,) int


def nearest_rows(queries: np.ndarray, items: np.ndarray, k: int, distance: str = "euclidean",
                 query_sqnorms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``items`` (M, D) nearest to each row of ``queries`` (N, D) in embedding space.

    Returns:
        (indices (N, k) int64, distances (N, k) float32), nearest first. Items with non-finite embeddings
        are never chosen (distance +inf).
    """
    n, m = len(queries), len(items)
    k = min(k, m)
    idx = np.zeros((n, k), np.int64)
    dist = np.zeros((n, k), np.float32)
    if n == 0 or k == 0:
        return idx, dist
    items = np.asarray(items, np.float32)
    bad = ~np.all(np.isfinite(items), axis=1)
    items = np.where(bad[:, None], 0.0, items).astype(np.float32)
    if distance == "cosine":
        items = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
    item_sq = np.einsum("ij,ij->i", items, items)
    for a in range(0, n, _CHUNK):
        q = np.asarray(queries[a:a + _CHUNK], np.float32)
        if distance == "cosine":
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            d = 1.0 - q @ items.T
        else:
            qs = np.einsum("ij,ij->i", q, q) if query_sqnorms is None else np.asarray(query_sqnorms[a:a + _CHUNK])
            d = q @ items.T
            d *= -2.0
            d += item_sq[None, :]  # + |q|^2 and the square root only on the k chosen: same order
        d[:, bad] = np.inf
        d[~np.all(np.isfinite(q), axis=1)] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (len(q), 1))
        pd = np.take_along_axis(d, part, axis=1)
        if distance != "cosine":
            pd = np.sqrt(np.maximum(pd + qs[:, None], 0.0))
        order = np.argsort(pd, axis=1)
        idx[a:a + len(q)] = np.take_along_axis(part, order, axis=1)
        dist[a:a + len(q)] = np.take_along_axis(pd, order, axis=1)
    return idx, dist


def inverse_square_weights(distances: np.ndarray) -> np.ndarray:
    """Weights ``1 / (d^2 + eps)`` (0 for infinite distances)."""
    d = np.asarray(distances, np.float64)
    w = 1.0 / (d * d + _EPS)
    w[~np.isfinite(d)] = 0.0
    return w


def weighted_prediction(neighbours: np.ndarray, weights: np.ndarray, values: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and weighted standard deviation of ``values[neighbours]`` per row, NaN values left out.

    Args:
        neighbours: (N, k) indices into ``values``; weights: (N, k); values: (M,) with NaN where undefined.
    Returns:
        (mean (N,), std (N,)) float32; NaN where no neighbour has a value.
    """
    v = np.asarray(values, np.float64)[neighbours]
    w = np.where(np.isfinite(v), weights, 0.0)
    v = np.where(np.isfinite(v), v, 0.0)
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * v).sum(axis=1) / total
        var = (w * (v - mean[:, None]) ** 2).sum(axis=1) / total
    mean[total <= 0] = np.nan
    var[total <= 0] = np.nan
    return mean.astype(np.float32), np.sqrt(np.maximum(var, 0.0)).astype(np.float32)


class SoundscapePredictor:
    """Predicted index layers of an atlas's tiles from its recordings' stored indices (see the module doc)."""

    def __init__(self, atlas, k: int = DEFAULT_K) -> None:
        if atlas.indices is None:
            raise AtlasError(atlas.path, "holds no acoustic indices (built before they existed, or without "
                             "scikit-maad)", "add them with 'soundscape-engine atlas indices --atlas ATLAS'")
        self.atlas = atlas
        self.indices = atlas.indices
        self.k = k
        self._neighbours: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def names(self) -> list[str]:
        return list(self.indices.names)

    def neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, k) nearest recordings of every tile in embedding space and their weights (computed once)."""
        if self._neighbours is None:
            from engine.atlas.indices import read_neighbours

            self._neighbours = read_neighbours(self.atlas, self.k) if hasattr(self.atlas, "manifest") else None
        if self._neighbours is None:
            tiles, recs = self.atlas.tiles, self.atlas.recordings
            idx, dist = nearest_rows(tiles.embeddings, recs.embeddings, self.k, self.atlas.distance, tiles.sqnorms)
            self._neighbours = (idx, inverse_square_weights(dist))
        return self._neighbours

    def layer(self, name: str) -> SoundscapeLayer:
        """The predicted ``name`` for every tile (KeyError for an unknown index)."""
        values = self.indices.column(name)
        idx, w = self.neighbours()
        mean, std = weighted_prediction(idx, w, values)
        return SoundscapeLayer(name, mean, std)

    def tile_values(self, tile: int) -> dict[str, tuple[float, float]]:
        """Every index predicted for one tile: {name: (value, uncertainty)} (NaN: no value)."""
        q = self.atlas.tiles.embeddings[tile:tile + 1]
        idx, dist = nearest_rows(q, self.atlas.recordings.embeddings, self.k, self.atlas.distance)
        w = inverse_square_weights(dist)
        out = {}
        for name in self.names:
            mean, std = weighted_prediction(idx, w, self.indices.column(name))
            out[name] = (float(mean[0]), float(std[0]))
        return out

    def hourly_profile(self, tile: int, name: str, k: int = PROFILE_K) -> HourlyProfile:
        """``name`` by local hour of day from the ``k`` recordings that best match the tile and whose start
        time is known (weighted as in :meth:`layer`)."""
        hour = self.indices.hour
        known = np.flatnonzero(np.isfinite(hour) & self.indices.computed)
        values = np.full(24, np.nan)
        counts = np.zeros(24, np.int64)
        if known.size == 0:
            return HourlyProfile(name, values, counts)
        q = self.atlas.tiles.embeddings[tile:tile + 1]
        idx, dist = nearest_rows(q, self.atlas.recordings.embeddings[known], k, self.atlas.distance)
        rows, w = known[idx[0]], inverse_square_weights(dist[0])
        column = self.indices.column(name)[rows]
        hours = np.floor(hour[rows]).astype(int) % 24
        for h in range(24):
            sel = (hours == h) & np.isfinite(column) & (w > 0)
            counts[h] = int(sel.sum())
            if counts[h]:
                values[h] = float(np.sum(w[sel] * column[sel]) / np.sum(w[sel]))
        return HourlyProfile(name, values, counts)


def hourly_profile_of_recordings(hours: np.ndarray, values: np.ndarray) -> HourlyProfile:
    """The plain 24-hour profile of measured values: the mean per local start hour (NaN values left out)."""
    hours = np.asarray(hours, np.float64)
    values = np.asarray(values, np.float64)
    out = np.full(24, np.nan)
    counts = np.zeros(24, np.int64)
    ok = np.isfinite(hours) & np.isfinite(values)
    h = np.floor(hours[ok]).astype(int) % 24
    for hour in range(24):
        sel = h == hour
        counts[hour] = int(sel.sum())
        if counts[hour]:
            out[hour] = float(values[ok][sel].mean())
    return HourlyProfile("", out, counts)
