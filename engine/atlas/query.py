"""Questions an atlas answers (torch-free, numpy only).

- :func:`locate_tile`: which tile covers a point.
- :func:`tile_soundscape`: a tile's predicted soundscape: the recordings whose embeddings are closest
  to the tile's, and the recordings geographically nearest to it (great-circle km).
- :func:`sound_query`: for a sound's embedding, a distance and a score for every tile (the heat map)
  and the best tiles.

A tile's recordings can be limited to a local hour-of-day or date range (``where``, a
:class:`engine.atlas.times.TimeFilter`); recordings without a time never match a limit.

Distances follow the bundle: Euclidean (the paper) or cosine distance ``1 - cos``. The **score** is a
similarity that grows as the distance shrinks: ``1 / (1 + d)`` for Euclidean distances (in (0, 1],
1 for an identical embedding) and the cosine similarity ``1 - d`` (in [-1, 1]) for cosine bundles.
Embeddings that are not finite (a recording that could not be re-embedded) never match: their
distance is +inf and their score 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.atlas.format import Atlas
from engine.atlas.times import TimeFilter
from engine.errors import UserInputError
from engine.geo import haversine_km, wrap_lon


@dataclass(frozen=True)
class RecordingMatch:
    index: int
    id: str
    title: str
    path: str
    distance: float  # embedding distance to the query
    score: float
    km: float  # great-circle distance from the query place (tile centre), NaN if there is none
    site: str | None = None  # campaign recordings: the site and the local start (ISO 8601 with offset)
    start_local: str | None = None


@dataclass(frozen=True)
class TileMatch:
    index: int
    id: int
    lon: float
    lat: float
    distance: float
    score: float


@dataclass(frozen=True)
class SoundQuery:
    distances: np.ndarray  # (N,) float32, one per tile
    scores: np.ndarray  # (N,) float32
    top: list[TileMatch]


def scores_from_distances(distances: np.ndarray, distance: str) -> np.ndarray:
    """The score of each distance (see the module docstring); 0 where the distance is +inf."""
    d = np.asarray(distances, dtype=np.float32)
    if distance == "cosine":
        scores = 1.0 - d
        scores[~np.isfinite(d)] = 0.0
        return scores
    scores = d + np.float32(1.0)  # in place from here: one temporary for a million tiles, not four
    np.reciprocal(scores, out=scores)  # 1 / inf = 0
    return scores


def embedding_distances(embeddings: np.ndarray, query: np.ndarray, distance: str,
                        sqnorms: np.ndarray | None = None) -> np.ndarray:
    """Distances (N,) float32 from each row of ``embeddings`` (N, D) to ``query`` (D,); +inf where an
    embedding is not finite.

    Computed as one matrix-vector product (``|e|^2 - 2 e.q + |q|^2``), which streams the embeddings
    once; ``sqnorms`` are the rows' squared norms when known (an atlas stores them).
    """
    q = np.asarray(query, dtype=np.float32).ravel()
    if embeddings.shape[0] == 0:
        return np.zeros(0, np.float32)
    if embeddings.shape[1] != q.size:
        raise UserInputError("query", f"embedding has {q.size} values, the atlas {embeddings.shape[1]}",
                             "embed the query with the atlas's bundle")
    if not np.isfinite(q).all():
        raise UserInputError("query", "embedding contains NaN or infinite values", "check the audio clip")
    d = np.asarray(embeddings @ q, dtype=np.float32)
    sq = np.einsum("ij,ij->i", embeddings, embeddings) if sqnorms is None else sqnorms
    qq = np.float32(q @ q)
    with np.errstate(invalid="ignore", divide="ignore"):
        if distance == "cosine":
            d /= np.sqrt(sq * qq)
            np.subtract(np.float32(1.0), d, out=d)
        else:
            d *= np.float32(-2.0)
            d += sq
            d += qq
            np.maximum(d, np.float32(0.0), out=d)
            np.sqrt(d, out=d)
    bad = ~np.isfinite(d)
    if bad.any():
        d[bad] = np.inf
    return d


def _exact(embeddings: np.ndarray, rows: np.ndarray, query: np.ndarray, distance: str) -> np.ndarray:
    """Distances of a few rows recomputed in float64 (the fast form loses digits for close pairs)."""
    e = np.asarray(embeddings[rows], dtype=np.float64)
    q = np.asarray(query, dtype=np.float64).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        if distance == "cosine":
            d = 1.0 - (e @ q) / (np.linalg.norm(e, axis=1) * np.linalg.norm(q))
        else:
            d = np.linalg.norm(e - q, axis=1)
    return np.where(np.isfinite(d), d, np.inf)


def top_k(distances: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest distances, nearest first, never +inf or NaN; ties go to the lower index."""
    distances = np.asarray(distances)
    finite = np.isfinite(distances)
    n_finite = distances.size if finite.all() else int(finite.sum())
    k = min(int(k), n_finite)
    if k <= 0:
        return np.zeros(0, np.int64)
    if k == n_finite:
        chosen = np.flatnonzero(finite)
        return chosen[np.lexsort((chosen, distances[chosen]))]
    candidates = np.arange(distances.size)
    if distances.size > 64 * k and distances.size > 50_000:
        # The k-th smallest of an evenly strided sample is at least the k-th smallest overall, so every
        # value up to it is a candidate and the true top k are among them: a few thousand candidates
        # instead of a partition of millions (5x faster on 1M tiles).
        sample = distances[:: max(1, distances.size // (256 * k))]
        threshold = np.partition(sample, k - 1)[k - 1]
        if np.isfinite(threshold):
            candidates = np.flatnonzero(distances <= threshold)
    values = distances[candidates]
    # argpartition finds the k-th smallest value (inf and NaN sort last); which of several equal values
    # it keeps is arbitrary, so take everything below it, then the lowest indices equal to it.
    kth = values[np.argpartition(values, k - 1)[k - 1]]
    below = candidates[values < kth]
    chosen = np.concatenate([below, candidates[values == kth][:k - below.size]])
    return chosen[np.lexsort((chosen, distances[chosen]))]


def locate_tile(atlas: Atlas, lon: float, lat: float) -> int | None:
    """The index of the tile whose footprint contains (lon, lat), or None.

    Longitudes are compared around each tile's centre, so tiles astride the antimeridian (corners just past
    +-180) are found from either side. Where footprints overlap (several images of one place) the tile with the nearest centre wins.
    """
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise UserInputError("lon,lat", f"({lon}, {lat}) is not a place on Earth", "give longitude then latitude in degrees")
    from engine.atlas.tile_index import tile_index_of

    # The atlas's tile index narrows the search to the few tiles near the place (not a scan of all N);
    # the exact test below, in degrees around each tile's centre, decides.
    cand = tile_index_of(atlas).near_lonlat(lon, lat)
    if cand.size == 0:
        return None
    centre_lon = np.asarray(atlas.tiles.lon[cand], dtype=np.float64)
    fp = np.asarray(atlas.tiles.footprints[cand], dtype=np.float64)
    east = wrap_lon(lon - centre_lon)  # the point's longitude relative to each tile's centre
    rel_lon = wrap_lon(fp[:, :, 0] - centre_lon[:, None])
    box = ((rel_lon.min(1) <= east) & (east <= rel_lon.max(1)) & (fp[:, :, 1].min(1) <= lat) &
           (lat <= fp[:, :, 1].max(1)))
    cand, east, centre_lon, fp = cand[box], east[box], centre_lon[box], fp[box]
    if cand.size == 0:
        return None
    quads = fp.copy()  # (c, 4, 2)
    quads[:, :, 0] = wrap_lon(quads[:, :, 0] - centre_lon[:, None])
    edges = np.roll(quads, -1, axis=1) - quads
    rel = np.stack([east, np.full(cand.size, lat)], axis=1)[:, None, :] - quads
    cross = edges[:, :, 0] * rel[:, :, 1] - edges[:, :, 1] * rel[:, :, 0]
    inside = (cross >= 0).all(axis=1) | (cross <= 0).all(axis=1)
    hits = cand[inside]
    if hits.size == 0:
        return None
    km = haversine_km(lon, lat, atlas.tiles.lon[hits], atlas.tiles.lat[hits])
    return int(hits[np.argmin(km)])


def _recording_matches(atlas: Atlas, rows: np.ndarray, distances: np.ndarray, km: np.ndarray) -> list[RecordingMatch]:
    rec = atlas.recordings
    times = rec.times
    scores = scores_from_distances(distances, atlas.distance)
    return [RecordingMatch(index=int(r), id=rec.ids[r], title=rec.titles[r], path=rec.paths[r],
                           distance=float(d), score=float(s), km=float(k),
                           site=times.sites[r] if times else None, start_local=times.start_local[r] if times else None)
            for r, d, s, k in zip(rows, distances, scores, km, strict=True)]


def recording_mask(atlas: Atlas, where: TimeFilter | None) -> np.ndarray | None:
    """Which of the atlas's recordings ``where`` allows (None: all of them)."""
    times = atlas.recordings.times
    if where is None or not where.active:
        return None
    if times is None:
        return np.zeros(len(atlas.recordings), bool)
    return times.mask(where)


def _excluded_to_inf(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return values
    values = np.array(values, dtype=np.float64 if values.dtype == np.float64 else np.float32)
    values[~mask] = np.inf  # top_k never returns +inf
    return values


def nearest_recordings(atlas: Atlas, lon: float, lat: float, k: int = 10,
                       embedding: np.ndarray | None = None, where: TimeFilter | None = None) -> list[RecordingMatch]:
    """The k recordings nearest to a place (km), with their embedding distance to ``embedding`` if given;
    only those ``where`` allows."""
    rec = atlas.recordings
    if len(rec) == 0:
        return []
    km = haversine_km(lon, lat, rec.lon, rec.lat)
    rows = top_k(_excluded_to_inf(km, recording_mask(atlas, where)), k)
    dist = _exact(rec.embeddings, rows, embedding, atlas.distance) if embedding is not None \
        else np.full(rows.size, np.nan)
    return _recording_matches(atlas, rows, dist, km[rows])


def tile_soundscape(atlas: Atlas, i: int, k: int = 10,
                    where: TimeFilter | None = None) -> tuple[list[RecordingMatch], list[RecordingMatch]]:
    """Tile ``i``'s predicted soundscape (from the recordings ``where`` allows: a local hour or date range).

    Returns:
        (best, nearest): the k recordings closest to the tile in embedding space (nearest first), and
        the k recordings closest on the ground to the tile's centre; each with both its embedding
        distance/score and its distance in km.
    """
    if not 0 <= int(i) < len(atlas.tiles):
        raise UserInputError("--tile", f"no tile {i} in this atlas ({len(atlas.tiles)} tiles)",
                             f"give an id from 0 to {len(atlas.tiles) - 1}")
    rec = atlas.recordings
    if len(rec) == 0:
        return [], []
    query = np.asarray(atlas.tiles.embeddings[i], dtype=np.float32)
    lon, lat = float(atlas.tiles.lon[i]), float(atlas.tiles.lat[i])
    d = embedding_distances(rec.embeddings, query, atlas.distance)
    rows = top_k(_excluded_to_inf(d, recording_mask(atlas, where)), k)
    km = haversine_km(lon, lat, rec.lon[rows], rec.lat[rows])
    best = _recording_matches(atlas, rows, _exact(rec.embeddings, rows, query, atlas.distance), km)
    return best, nearest_recordings(atlas, lon, lat, k, embedding=query, where=where)


def sound_query(atlas: Atlas, embedding: np.ndarray, k: int = 10) -> SoundQuery:
    """Where could this sound have been recorded: every tile's distance and score, and the k best tiles.

    An atlas with a search index (:mod:`engine.atlas.ann`, large atlases) answers the top k from its ANN
    candidates re-ranked exactly, and every tile's distance from the compact one-byte codes."""
    tiles = atlas.tiles
    query = np.asarray(embedding, dtype=np.float32).ravel()
    from engine.atlas.ann import search_index

    index = search_index(atlas)
    if index is None:
        d = embedding_distances(tiles.embeddings, query, atlas.distance, sqnorms=tiles.sqnorms)
        rows = top_k(d, k)
        exact = _exact(tiles.embeddings, rows, query, atlas.distance)
    else:  # a large atlas: the heat map from the one-byte codes, the top k from the ANN index re-ranked exactly
        embedding_distances(tiles.embeddings[:1], query, atlas.distance)  # the same checks of the query
        d = index.distances(query)
        rows, exact = index.nearest(query, k)
    scores = scores_from_distances(d, atlas.distance)
    top_scores = scores_from_distances(exact, atlas.distance)
    order = np.lexsort((rows, exact))  # the exact distances decide near-ties
    top = [TileMatch(index=int(rows[j]), id=int(tiles.ids[rows[j]]), lon=float(tiles.lon[rows[j]]),
                     lat=float(tiles.lat[rows[j]]), distance=float(exact[j]), score=float(top_scores[j]))
           for j in order]
    return SoundQuery(distances=d, scores=scores, top=top)
