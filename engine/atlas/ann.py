"""Search at scale (torch-free): an approximate-nearest-neighbour index and a compact copy of the tile
embeddings, kept beside a large atlas's exact arrays.

Below :data:`ANN_THRESHOLD` tiles nothing is built and search stays exact (a matrix-vector product over
the memory-mapped embeddings). Above it, :func:`update_search_index` (run at the end of every build and
re-embedding) keeps two derived files per embedding generation ``g``:

- ``tiles/ann.<g>.faiss``: a FAISS IVF-PQ index (``nlist`` ~ sqrt(N) lists, D/4 bytes a tile). The top k
  of a query are its best few hundred candidates re-ranked with the exact float32 embeddings (a few hundred
  rows paged in), so the answer is exact whenever the true top k are among the candidates. Built
  incrementally: trained once, then rows ``ntotal..N`` are added after each build. Rows a build added
  after the index was last updated are searched exactly.
- ``tiles/embedding.<g>.u1`` + ``tiles/sq8.<g>.npy``: the embeddings scalar-quantised to one byte per
  value (per-dimension ``lo`` and ``step``), a quarter of the float32 size, read in chunks for the heat
  map of a sound query over every tile. With the exact stored squared norms, each tile's squared distance
  is off by at most ``sum_j |q_j| step_j`` (the rounding bound; values outside the fitted range are clipped
  and counted in the npy header's companion ``clipped``).

A re-embedding starts a new generation; the old generation's files are removed and the new ones built
from scratch. FAISS is optional (the ``scale`` extra): without it only the compact heat map is kept.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.atlas.format import Atlas, open_atlas, tile_array_path
from engine.errors import AtlasError

log = logging.getLogger(__name__)

ANN_THRESHOLD = 200_000  # tiles; below it exact search is fast enough (about 15 ms for 200k x 128)
CHUNK_ROWS = 131_072  # rows per step while building
HEAT_BLOCK_BYTES = 2**20  # codes per block of the heat map: stays in the CPU's cache
CANDIDATES = 256  # re-ranked exactly
NPROBE = 24
TRAIN_PER_LIST = 40
TRAIN_ITERATIONS = 10
NLIST_MAX = 2048  # lists; more would make adding 10M tiles (nearest list of each) much slower


def ann_path(root: Path, generation: int) -> Path:
    return root / "tiles" / f"ann.{generation}.faiss"


def codes_path(root: Path, generation: int) -> Path:
    return root / "tiles" / f"embedding.{generation}.u1"


def sq8_path(root: Path, generation: int) -> Path:
    return root / "tiles" / f"sq8.{generation}.npy"


def _stale(root: Path, generation: int) -> list[Path]:
    keep = {ann_path(root, generation).name, codes_path(root, generation).name, sq8_path(root, generation).name}
    found = [*root.glob("tiles/ann.*.faiss"), *root.glob("tiles/embedding.*.u1"), *root.glob("tiles/sq8.*.npy")]
    return [p for p in found if p.name not in keep]


def _sample_rows(n: int, m: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, m)).astype(np.int64))


def _quantise(emb: np.ndarray, lo: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, int]:
    q = np.rint((emb - lo) / step)
    clipped = int(((q < 0) | (q > 255)).sum())
    return np.clip(q, 0, 255).astype(np.uint8), clipped


def _update_codes(atlas: Atlas) -> None:
    root, g, n, d = atlas.path, atlas.generation, len(atlas.tiles), atlas.embedding_dim
    emb = atlas.tiles.embeddings
    params_file = sq8_path(root, g)
    if params_file.is_file():
        params = np.load(params_file)
        lo, step = params[0], params[1]
    else:
        sample = np.asarray(emb[_sample_rows(n, 100_000)], np.float32)
        low, high = sample.min(axis=0), sample.max(axis=0)
        margin = 0.1 * (high - low) + 1e-6  # room for later rows outside the sample's range
        lo, step = low - margin, (high - low + 2 * margin) / 255.0
        codes_path(root, g).unlink(missing_ok=True)
        np.save(params_file, np.stack([lo, step]).astype(np.float32))
        lo, step = lo.astype(np.float32), step.astype(np.float32)
    path = codes_path(root, g)
    done = path.stat().st_size // d if path.is_file() else 0
    if done > n:  # cannot happen with an append-only atlas; start over rather than misalign
        path.unlink()
        done = 0
    with open(path, "ab") as f:
        f.truncate(done * d)
        clipped = 0
        for start in range(done, n, CHUNK_ROWS):
            codes, c = _quantise(np.asarray(emb[start:start + CHUNK_ROWS], np.float32), lo, step)
            clipped += c
            f.write(codes.tobytes())
        f.flush()
        os.fsync(f.fileno())
    if clipped:
        log.warning("%d embedding values fell outside the compact heat map's range and were clipped", clipped)


def _pq_bytes(d: int) -> int:
    for m in (d // 4, d // 2, d // 8, d):
        if m >= 1 and d % m == 0:
            return m
    return d


def _update_ann(atlas: Atlas) -> None:
    try:
        import faiss
    except ImportError:
        log.info("FAISS is not installed: no approximate search index (install the 'scale' extra)")
        return
    root, g, n, d = atlas.path, atlas.generation, len(atlas.tiles), atlas.embedding_dim
    emb = atlas.tiles.embeddings
    path = ann_path(root, g)
    if path.is_file():
        index = faiss.read_index(str(path))
    else:
        nlist = int(np.clip(np.sqrt(n), 64, NLIST_MAX))
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFPQ(quantizer, d, nlist, _pq_bytes(d), 8)
        # 10 k-means iterations instead of 25: training 3-4x faster; the exact re-ranking absorbs the difference
        index.cp.niter = TRAIN_ITERATIONS
        index.pq.cp.niter = TRAIN_ITERATIONS
        size = min(max(TRAIN_PER_LIST * nlist, 10_000), 262_144)  # FAISS wants >= 39 per list, 9984 per PQ book
        train = np.ascontiguousarray(emb[_sample_rows(n, size)], np.float32)
        index.train(train)
    start = int(index.ntotal)
    if start >= n:
        return
    for lo in range(start, n, CHUNK_ROWS):
        rows = np.ascontiguousarray(emb[lo:lo + CHUNK_ROWS], np.float32)
        index.add_with_ids(rows, np.arange(lo, lo + len(rows), dtype=np.int64))
    tmp = path.with_suffix(".faiss.tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)


def update_search_index(atlas_path: str | Path, threshold: int | None = None) -> bool:
    """Build or extend the ANN index and compact heat-map codes of an atlas with at least ``threshold``
    tiles (removing those of older generations). Returns whether the atlas has them now."""
    from engine.folder_lock import FolderLock

    threshold = ANN_THRESHOLD if threshold is None else threshold
    from engine.atlas.format import MANIFEST, read_manifest

    path = Path(atlas_path)
    manifest = read_manifest(path.parent if path.name == MANIFEST else path)
    if int(manifest["tiles"]["count"]) < threshold and not _stale(path, -1):
        return False  # the usual small atlas: nothing to open, build or remove
    atlas = open_atlas(atlas_path)
    root = atlas.path
    lock = FolderLock(root, busy="is being written by another build", fix="wait for it to finish or cancel it")
    try:
        for path in _stale(root, atlas.generation):
            path.unlink(missing_ok=True)
        if len(atlas.tiles) < threshold:
            return False
        try:
            _update_codes(atlas)
            _update_ann(atlas)
        except (OSError, RuntimeError) as err:  # FAISS reports a failed write as RuntimeError
            if isinstance(err, OSError) and err.errno not in (errno.ENOSPC, errno.EDQUOT) or \
                    isinstance(err, RuntimeError) and "space" not in str(err).lower():
                raise
            from engine.files import disk_full_error

            raise disk_full_error(ann_path(root, atlas.generation), None) from None
        return True
    finally:
        lock.release()
        atlas.close()


@dataclass
class SearchIndex:
    """The derived files of an opened atlas (see the module docstring)."""

    atlas: Atlas
    ann: Any  # faiss.Index or None
    lo: np.ndarray
    step: np.ndarray
    codes: Path

    @property
    def indexed(self) -> int:
        return int(self.ann.ntotal) if self.ann is not None else 0

    def top_k(self, query: np.ndarray, k: int) -> np.ndarray:
        """Candidate rows for the k nearest tiles (to be re-ranked exactly): the index's best
        :data:`CANDIDATES`, plus the best of the rows added after the index was last updated."""
        q = np.ascontiguousarray(np.asarray(query, np.float32).reshape(1, -1))
        tiles = self.atlas.tiles
        want = max(CANDIDATES, 4 * k)
        parts = []
        if self.ann is not None:
            self.ann.nprobe = NPROBE
            _, ids = self.ann.search(q, want)
            parts.append(ids[0][ids[0] >= 0])
        start = self.indexed
        if start < len(tiles):  # a ranking of the tail (the exact re-ranking follows): no engine.atlas.query here
            dots = np.asarray(tiles.embeddings[start:], np.float32) @ q[0]
            sq = np.asarray(tiles.sqnorms[start:], np.float32)
            with np.errstate(invalid="ignore", divide="ignore"):
                rank = -dots / np.sqrt(sq) if self.atlas.distance == "cosine" else sq - 2 * dots
            rank = np.where(np.isfinite(rank), rank, np.inf)
            m = min(want, rank.size)
            parts.append(start + np.argpartition(rank, m - 1)[:m])
        return np.unique(np.concatenate(parts))

    def distances(self, query: np.ndarray) -> np.ndarray:
        """Every tile's approximate Euclidean (or cosine) distance from the one-byte codes.

        The codes are read with ``pread`` in cache-sized blocks (about 1 MB) by one thread per core, each
        with its own small buffers, so scoring 10 million tiles neither maps nor keeps gigabytes resident
        and the conversions run in parallel."""
        from concurrent.futures import ThreadPoolExecutor

        from engine.inference.encoders import default_threads

        tiles = self.atlas.tiles
        n, d = len(tiles), self.atlas.embedding_dim
        q = np.asarray(query, np.float32).ravel()
        weights = self.step * q  # e.q = lo.q + codes.(step*q)
        dots = np.empty(n, np.float32)
        block = max(256, HEAT_BLOCK_BYTES // d)
        starts = list(range(0, n, block))
        threads = max(1, min(default_threads(), len(starts)))
        fd = os.open(self.codes, os.O_RDONLY)

        def score(mine: list[int]) -> None:
            raw = np.empty(block * d, np.uint8)
            as_float = np.empty((block, d), np.float32)
            for start in mine:
                m = min(block, n - start)
                if os.preadv(fd, [memoryview(raw)[:m * d]], start * d) != m * d:
                    raise AtlasError(self.codes, "is shorter than the atlas counts",
                                     "run 'soundscape-engine atlas build' again to update it")
                as_float[:m] = raw[:m * d].reshape(m, d)
                # einsum, not BLAS: OpenBLAS would start its own threads for each small product (4x slower)
                np.einsum("ij,j->i", as_float[:m], weights, out=dots[start:start + m])

        try:
            if threads == 1:
                score(starts)
            else:
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(score, [starts[i::threads] for i in range(threads)]))
        finally:
            os.close(fd)
        dots += np.float32(self.lo @ q)
        sq = tiles.sqnorms
        qq = np.float32(q @ q)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.atlas.distance == "cosine":
                dots /= np.sqrt(sq * qq)
                return np.subtract(np.float32(1.0), dots, out=dots)
            dots *= np.float32(-2.0)
            dots += sq
            dots += qq
            np.maximum(dots, np.float32(0.0), out=dots)
            return np.sqrt(dots, out=dots)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """Exact float32 embeddings of a few rows, read with ``pread`` (a memory map would fault in and keep
        read-ahead pages around each row: megabytes of resident memory per query)."""
        d = self.atlas.embedding_dim
        path = tile_array_path(self.atlas.path, "embedding", self.atlas.generation)
        out = np.empty((len(rows), d), "<f4")
        fd = os.open(path, os.O_RDONLY)
        try:
            for i, r in enumerate(np.asarray(rows, np.int64)):
                os.preadv(fd, [memoryview(out[i])], int(r) * d * 4)
        finally:
            os.close(fd)
        return out

    def nearest(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest tiles and their exact (float64) distances: ANN candidates re-ranked exactly."""
        cand = self.top_k(query, k)
        e = self.rows(cand).astype(np.float64)
        q = np.asarray(query, np.float64).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.atlas.distance == "cosine":
                dist = 1.0 - (e @ q) / (np.linalg.norm(e, axis=1) * np.linalg.norm(q))
            else:
                dist = np.linalg.norm(e - q, axis=1)
        dist = np.where(np.isfinite(dist), dist, np.inf)
        order = np.lexsort((cand, dist))[:k]
        return cand[order], dist[order]

    def squared_distance_bound(self, query: np.ndarray) -> float:
        """The most a tile's squared Euclidean distance from :meth:`distances` can be off (no clipping)."""
        return float(np.abs(np.asarray(query, np.float64).ravel()) @ self.step.astype(np.float64))


def search_index(atlas: Atlas, threshold: int | None = None) -> SearchIndex | None:
    """The atlas's search index (loaded once per opened atlas), or None: below the threshold, not built,
    or out of date with the embeddings (an atlas re-embedded since)."""
    threshold = ANN_THRESHOLD if threshold is None else threshold
    n = len(atlas.tiles)
    cached = getattr(atlas, "_search_index_cache", None)
    if cached is not None and cached[0] == (n, threshold):
        return cached[1]
    found = None
    root, g = atlas.path, atlas.generation
    codes = codes_path(root, g)
    if n >= threshold and sq8_path(root, g).is_file() and codes.is_file() and \
            codes.stat().st_size >= n * atlas.embedding_dim:
        params = np.load(sq8_path(root, g))
        ann = None
        if ann_path(root, g).is_file():
            try:
                import faiss

                try:
                    ann = faiss.read_index(str(ann_path(root, g)), faiss.IO_FLAG_MMAP)
                except RuntimeError:
                    ann = faiss.read_index(str(ann_path(root, g)))
            except ImportError:
                log.info("FAISS is not installed: exact search over %d tiles", n)
        found = SearchIndex(atlas, ann, params[0], params[1], codes)
    atlas._search_index_cache = ((n, threshold), found)
    return found
