"""Cross-modal retrieval metrics as the SoundingEarth paper computes them (numpy only, torch-free).

For every test pair, each direction ranks the whole test gallery of the other modality by embedding
distance and records where the true partner lands:

- **rank**: 1-based, ties averaged (pandas' ``rank()``), so a perfect match has rank 1;
- **R@k**: the fraction of queries whose partner is among the top k, ``rank <= k`` (the usual
  meaning; R@1 is the fraction ranked first); **paper_R@k**: the reference code's count,
  ``rank < k``, which counts the top k−1 (so its R@1 would always be 0); use it to compare with the
  paper's tables; **R@10%**: the fraction with ``rank <= 10% of the gallery``;
- **median rank**;
- **D@k**: the mean over queries of the smallest great-circle distance (km, haversine, R = 6371 km)
  between the query's location and the locations of its top-k results (k larger than the gallery
  takes the whole gallery, so D@k is 0).

Protocols:

- ``paper``: L2 distances arranged as a matrix with rows sounds and columns images, each image
  column divided by its mean before ranking (the reference code's normalisation). It changes only
  the sound→image ranking: it discounts "hub" images that are close to every sound.
- ``plain``: raw L2 distances.

:func:`retrieval_metrics` agrees with the reference cases in ``../shared/reference``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.geo import haversine_km  # on the sphere of the reference's D@k (R = 6371 km)

PROTOCOLS = ("paper", "plain")
RECALL_KS = (1, 5, 10, 100, 500, 1000)
DISTANCE_KS = (10, 100, 1000)
DIRECTIONS = ("image_to_audio", "audio_to_image")
_BLOCK = 512  # query rows per block: bounds memory to _BLOCK x gallery


@dataclass
class DirectionResult:
    """One retrieval direction: per-query ranks and nearest-location distances, and the summary."""

    ranks: np.ndarray                       # (N,) 1-based, ties averaged
    km_at: dict[int, np.ndarray]            # k -> (N,) smallest km from the query to its top-k
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class RetrievalResult:
    protocol: str
    gallery: int
    image_to_audio: DirectionResult
    audio_to_image: DirectionResult

    def summary(self) -> dict[str, Any]:
        """The JSON-ready summary: protocol, gallery size and both directions' metrics."""
        return {"protocol": self.protocol, "gallery": self.gallery,
                "image_to_audio": dict(self.image_to_audio.metrics),
                "audio_to_image": dict(self.audio_to_image.metrics)}


def _as_matrix(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a (N, D) array, got shape {arr.shape}")
    return arr


def distance_matrix(image_emb: Any, audio_emb: Any, protocol: str = "paper") -> np.ndarray:
    """(N_sounds, N_images) L2 distances, rows sounds, columns images; ``paper`` divides each column
    by its mean."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: unknown {protocol!r}; use one of {PROTOCOLS}")
    img, snd = _as_matrix(image_emb, "image_emb"), _as_matrix(audio_emb, "audio_emb")
    sq = (snd ** 2).sum(1)[:, None] + (img ** 2).sum(1)[None, :] - 2.0 * snd @ img.T
    d = np.sqrt(np.maximum(sq, 0.0))
    if protocol == "paper":
        mean = d.mean(axis=0, keepdims=True)
        d = d / np.where(mean > 0, mean, 1.0)
    return d


def _rank_direction(d: np.ndarray, lon: np.ndarray, lat: np.ndarray, recall_ks: tuple[int, ...],
                    distance_ks: tuple[int, ...]) -> DirectionResult:
    """Rows of ``d`` are queries, columns the gallery; query i's true partner is column i."""
    n = d.shape[0]
    ranks = np.empty(n, np.float64)
    km_at = {k: np.empty(n, np.float64) for k in distance_ks}
    kmax = min(max(distance_ks, default=1), n)
    for start in range(0, n, _BLOCK):
        rows = d[start:start + _BLOCK]
        idx = np.arange(start, start + rows.shape[0])
        true = rows[np.arange(rows.shape[0]), idx][:, None]
        less = (rows < true).sum(1)
        equal = (rows == true).sum(1)  # includes the partner itself
        ranks[start:start + rows.shape[0]] = less + (equal + 1) / 2.0
        # Stable sort: among equal distances the earlier item comes first (pandas' nsmallest).
        top = np.argsort(rows, axis=1, kind="stable")[:, :kmax]
        km = haversine_km(lon[idx][:, None], lat[idx][:, None], lon[top], lat[top])
        running_min = np.minimum.accumulate(km, axis=1)
        for k in distance_ks:
            km_at[k][start:start + rows.shape[0]] = running_min[:, min(k, n) - 1]
    metrics: dict[str, float] = {f"R@{k}": float((ranks <= k).mean()) for k in recall_ks}
    metrics.update({f"paper_R@{k}": float((ranks < k).mean()) for k in recall_ks})
    metrics["R@10%"] = float((ranks <= 0.1 * n).mean())
    metrics["median_rank"] = float(np.median(ranks))
    metrics["mean_rank"] = float(ranks.mean())
    for k in distance_ks:
        metrics[f"D@{k}_km"] = float(km_at[k].mean())
    return DirectionResult(ranks, km_at, metrics)


def retrieval_metrics(image_emb: Any, audio_emb: Any, lon: Any, lat: Any, protocol: str = "paper",
                      recall_ks: tuple[int, ...] = RECALL_KS,
                      distance_ks: tuple[int, ...] = DISTANCE_KS) -> RetrievalResult:
    """Both retrieval directions on a test gallery of N pairs.

    Args:
        image_emb, audio_emb: (N, D) arrays (numpy or torch); row i of each is a true pair.
        lon, lat: (N,) locations of the pairs in degrees (WGS84).
        protocol: ``paper`` (column-mean normalisation) or ``plain`` (see module docstring).
        recall_ks, distance_ks: the k of R@k and D@k.
    Returns:
        A :class:`RetrievalResult` with per-query ranks and ``km_at`` for each direction and the
        metrics ``R@k``, ``paper_R@k``, ``R@10%``, ``median_rank``, ``mean_rank``, ``D@k_km``.
    Raises:
        ValueError: shapes disagree, fewer than 2 pairs, or an unknown protocol.
    """
    d = distance_matrix(image_emb, audio_emb, protocol)
    n = d.shape[0]
    lon_a, lat_a = np.asarray(lon, np.float64).ravel(), np.asarray(lat, np.float64).ravel()
    if d.shape != (n, n) or lon_a.shape != (n,) or lat_a.shape != (n,):
        raise ValueError(f"image_emb, audio_emb, lon, lat: need N paired rows, got {d.shape[1]} images, "
                         f"{d.shape[0]} sounds, {lon_a.size} lon, {lat_a.size} lat")
    if n < 2:
        raise ValueError("retrieval needs at least 2 pairs")
    # Image->sound ranks a column (the sounds' distances to one image); sound->image ranks a row.
    i2a = _rank_direction(np.ascontiguousarray(d.T), lon_a, lat_a, recall_ks, distance_ks)
    a2i = _rank_direction(d, lon_a, lat_a, recall_ks, distance_ks)
    return RetrievalResult(protocol, n, i2a, a2i)


VALIDATION_KEYS = ("R@1", "R@5", "R@10", "R@10%", "median_rank", "mean_rank", "D@10_km")


def validation_summary(result: RetrievalResult) -> dict[str, Any]:
    """The validation record of ``metrics.jsonl`` and checkpoints (``train``, ``train --shards``) and of a
    bundle variant's retrieval check: gallery, protocol and :data:`VALIDATION_KEYS` of both directions."""
    return {"gallery": result.gallery, "protocol": result.protocol,
            **{d: {k: getattr(result, d).metrics[k] for k in VALIDATION_KEYS} for d in DIRECTIONS}}


def recall_curve(ranks: np.ndarray, gallery: int, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(k, fraction of queries with rank <= k) for k from 1 to the gallery size."""
    ks = np.unique(np.linspace(1, gallery, points).round().astype(int))
    ranks = np.sort(np.asarray(ranks))
    return ks, np.searchsorted(ranks, ks, side="right") / max(1, ranks.size)
