"""Appending to an atlas safely: a lock, append-only files, and atlas.json replaced atomically after
the bytes are on disk (see :mod:`engine.atlas.format`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from engine.atlas.format import (
    ATLAS_FORMAT,
    ATLAS_VERSION,
    DAMAGED_FIX,
    MANIFEST,
    NEIGHBOURS_FILE,
    THUMBNAILS,
    TILE_ARRAYS,
    WEIGHTS_FILE,
    read_manifest,
    recording_embedding_path,
    tile_array_path,
)
from engine.atlas.source_log import LOG_KEY, SourceEntry, SourceLog
from engine.bundle.format import Bundle
from engine.errors import AtlasError
from engine.files import atomic_write_text, disk_full_error, is_disk_full, json_safe, remove_stale_temp_files
from engine.folder_lock import LOCK_NAME, FolderLock

RECORDING_META = Path("recordings") / "meta.jsonl"
log = logging.getLogger(__name__)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class _Appender:
    """An append-only file cut back to ``keep`` bytes on open (drops a tail a crash left behind)."""

    def __init__(self, path: Path, keep: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        size = path.stat().st_size
        if size < keep:
            raise AtlasError(path, f"holds {size} bytes, the atlas counts {keep}", DAMAGED_FIX)
        if size > keep:
            os.truncate(path, keep)
        self.path = path
        self.file = open(path, "ab")  # noqa: SIM115 - closed in close()
        self.size = keep
        self._unsynced = 0

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as err:
            self._raise(err, len(data))
        self.size += len(data)
        self._unsynced += len(data)

    def sync(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as err:
            self._raise(err, self._unsynced)
        self._unsynced = 0

    def _raise(self, err: OSError, needed: int) -> None:
        """A full disk as a one-line error (the manifest does not count the bytes, so nothing is lost)."""
        if is_disk_full(err):
            raise disk_full_error(self.path, needed) from err
        raise err

    def close(self) -> None:
        self.file.close()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """The manifest, rewritten at every commit: one line through the C encoder (5x faster than indented
    output, which matters with thousands of sources); NaN replaced only when there is one."""
    try:
        text = json.dumps(data, allow_nan=False)
    except ValueError:
        text = json.dumps(json_safe(data), allow_nan=False)
    atomic_write_text(path, text)


def new_manifest(bundle: Bundle, tiling: dict[str, Any]) -> dict[str, Any]:
    return {"format": ATLAS_FORMAT, "format_version": ATLAS_VERSION, "bundle_id": bundle.bundle_id,
            "bundle_path": str(bundle.path), "embedding_dim": bundle.embedding_dim, "distance": bundle.distance,
            "image_size": bundle.image_size, "generation": 0, "created_at": now(), "updated_at": now(),
            "tiling": tiling, "tiles": {"count": 0, "thumbnail_bytes": 0},
            "recordings": {"count": 0, "meta_bytes": 0}, "sources": [], "recording_tables": [], "reembed": None}


def _on_disk(manifest: dict[str, Any]) -> dict[str, Any]:
    """atlas.json as written: the sources' entries live in their log (engine.atlas.source_log)."""
    return {k: v for k, v in manifest.items() if k != "sources"}


# Per-generation files (``engine.atlas.format``): tiles/embedding.G.f4, sqnorm.G.f4, neighbours.G.i4,
# neighbour_weights.G.f4 and recordings/embedding.G.f4. (The search index's own files: engine.atlas.ann.)
_GENERATION_FILE = re.compile(r"^(embedding|sqnorm|neighbours|neighbour_weights)\.(\d+)\.(f4|i4)$")


class AtlasWriter:
    """Opens (or creates) an atlas for appending tiles and recordings, or a new embedding generation.

    Each ``append_*`` writes and syncs the bytes; :meth:`commit` then records the new counts. Use as a
    context manager (the lock is released on exit).
    """

    def __init__(self, root: str | Path, bundle: Bundle, tiling: dict[str, Any] | None = None,
                 create: bool = True) -> None:
        self.root = Path(root)
        if not (self.root / MANIFEST).is_file():
            if not create:
                read_manifest(self.root)  # raises the right "not found / not an atlas" error
            if self.root.exists() and not self.root.is_dir():
                raise AtlasError(self.root, "is a file, not a folder", "choose a new --out folder")
            if self.root.exists() and any(p.name != LOCK_NAME for p in self.root.iterdir()):
                raise AtlasError(self.root, "folder exists and is not an atlas", "choose a new --out folder")
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as err:  # a path through a file, no permission, a read-only disk
                raise AtlasError(self.root, f"cannot be created ({err.strerror})", "choose another --out folder") from None
        self._lock = FolderLock(self.root, busy="is being written by another build",
                                fix="wait for it to finish or cancel it")
        try:
            remove_stale_temp_files(self.root)  # an atlas.json write cut short by a kill
            created = not (self.root / MANIFEST).is_file()
            self.manifest = new_manifest(bundle, tiling or {}) if created else read_manifest(self.root)
            self._sources = SourceLog(self.root, self.manifest)
            if created:
                self.commit()
            self.bundle = bundle
            self._remove_other_generations()
            self._open_appenders()
        except BaseException:
            self._lock.release()
            raise

    def _remove_other_generations(self) -> None:
        """Delete embedding files of generations the atlas no longer uses: a re-embedding killed after it
        switched generations but before it removed the old files leaves them, and the next writer (the same
        command run again) finishes the job."""
        m = self.manifest
        keep = {int(m["generation"])}
        if m.get("reembed"):
            keep.add(int(m["reembed"]["generation"]))
        for folder in (self.root / "tiles", self.root / "recordings"):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                found = _GENERATION_FILE.match(path.name)
                if found and int(found.group(2)) not in keep:
                    try:
                        path.unlink()
                        log.info("removed %s (embedding generation %s is no longer used)", path, found.group(2))
                    except OSError as err:  # e.g. still memory-mapped by a reader on Windows: harmless
                        log.warning("could not remove the old %s (%s); it is no longer used", path, err)

    # -------------------------------------------------------------------------------- files
    def _open_appenders(self) -> None:
        m, d, g = self.manifest, int(self.manifest["embedding_dim"]), int(self.manifest["generation"])
        n, r = int(m["tiles"]["count"]), int(m["recordings"]["count"])
        self._tiles = {name: _Appender(tile_array_path(self.root, name), n * _row_bytes(dtype, tail))
                       for name, (dtype, tail) in TILE_ARRAYS.items()}
        self._tiles["embedding"] = _Appender(tile_array_path(self.root, "embedding", g), n * d * 4)
        self._tiles["sqnorm"] = _Appender(tile_array_path(self.root, "sqnorm", g), n * 4)
        self._thumbs = _Appender(self.root / THUMBNAILS, int(m["tiles"]["thumbnail_bytes"]))
        self._rec_meta = _Appender(self.root / RECORDING_META, int(m["recordings"]["meta_bytes"]))
        self._rec_emb = _Appender(recording_embedding_path(self.root, g), r * d * 4)
        self._next: dict[str, _Appender] = {}

    def check_bundle(self) -> None:
        """Refuse to add embeddings from a bundle other than the atlas's, or during a re-embedding."""
        m = self.manifest
        if m.get("reembed"):
            raise AtlasError(self.root, f"has an unfinished re-embedding with bundle {m['reembed']['bundle_id'][:12]}",
                             "finish it first: soundscape-engine atlas reembed --atlas ATLAS --bundle BUNDLE")
        if m["bundle_id"] != self.bundle.bundle_id:
            raise AtlasError(self.root, f"was built with model bundle {m['bundle_id'][:12]}, not "
                             f"{self.bundle.bundle_id[:12]}", "re-embed it with 'soundscape-engine atlas reembed' "
                             "first, or build into a new --out folder")

    # -------------------------------------------------------------------------------- tiles
    def append_tiles(self, lon: np.ndarray, lat: np.ndarray, footprints: np.ndarray, source: int,
                     grid: np.ndarray, thumbnails: list[bytes], embeddings: np.ndarray) -> None:
        """Append k tiles (arrays of k rows) and sync them; :meth:`commit` makes them count."""
        k = len(lon)
        if k == 0:
            return
        offsets = np.empty((k, 2), np.int64)
        pos = self._thumbs.size
        for i, jpeg in enumerate(thumbnails):
            offsets[i] = (pos, len(jpeg))
            self._thumbs.write(jpeg)
            pos += len(jpeg)
        emb = np.ascontiguousarray(embeddings, dtype="<f4")
        columns = {"lon": lon, "lat": lat, "footprint": footprints, "source": np.full(k, source),
                   "grid": grid, "thumb": offsets, "embedding": emb, "sqnorm": np.einsum("ij,ij->i", emb, emb)}
        for name, values in columns.items():
            dtype = TILE_ARRAYS[name][0] if name in TILE_ARRAYS else "<f4"
            self._tiles[name].write(np.ascontiguousarray(values, dtype=dtype).tobytes())
        for f in (*self._tiles.values(), self._thumbs):
            f.sync()
        self.manifest["tiles"]["count"] += k
        self.manifest["tiles"]["thumbnail_bytes"] = self._thumbs.size

    # -------------------------------------------------------------------------------- recordings
    def append_recordings(self, meta: list[dict[str, Any]], embeddings: np.ndarray) -> None:
        if not meta:
            return
        self._rec_meta.write("".join(json.dumps(json_safe(m), ensure_ascii=False, allow_nan=False) + "\n" for m in meta).encode())
        self._rec_emb.write(np.ascontiguousarray(embeddings, dtype="<f4").tobytes())
        self._rec_meta.sync()
        self._rec_emb.sync()
        self.manifest["recordings"]["count"] += len(meta)
        self.manifest["recordings"]["meta_bytes"] = self._rec_meta.size

    # -------------------------------------------------------------------------------- re-embedding
    def begin_reembed(self) -> dict[str, Any]:
        """Start (or continue) writing generation g+1 with ``self.bundle``; returns the progress record."""
        m, b = self.manifest, self.bundle
        pending = m.get("reembed")
        if pending and pending["bundle_id"] != b.bundle_id:
            for path in self._next_paths(pending).values():  # another bundle's unfinished work
                path.unlink(missing_ok=True)
            pending = None
        if pending is None:
            pending = {"bundle_id": b.bundle_id, "bundle_path": str(b.path), "embedding_dim": b.embedding_dim,
                       "distance": b.distance, "image_size": b.image_size, "generation": int(m["generation"]) + 1,
                       "tiles_done": 0, "recordings_done": 0, "started_at": now()}
            m["reembed"] = pending
            self.commit()
        d = pending["embedding_dim"]
        keep = {"embedding": pending["tiles_done"] * d * 4, "sqnorm": pending["tiles_done"] * 4,
                "recordings": pending["recordings_done"] * d * 4}
        self._next = {name: _Appender(path, keep[name]) for name, path in self._next_paths(pending).items()}
        return pending

    def _next_paths(self, pending: dict[str, Any]) -> dict[str, Path]:
        g = int(pending["generation"])
        return {"embedding": tile_array_path(self.root, "embedding", g),
                "sqnorm": tile_array_path(self.root, "sqnorm", g),
                "recordings": recording_embedding_path(self.root, g)}

    def append_reembedded(self, tile_embeddings: np.ndarray | None = None,
                          recording_embeddings: np.ndarray | None = None) -> None:
        pending = self.manifest["reembed"]
        if tile_embeddings is not None and len(tile_embeddings):
            emb = np.ascontiguousarray(tile_embeddings, dtype="<f4")
            self._next["embedding"].write(emb.tobytes())
            self._next["sqnorm"].write(np.einsum("ij,ij->i", emb, emb).astype("<f4").tobytes())
            self._next["embedding"].sync()
            self._next["sqnorm"].sync()
            pending["tiles_done"] += len(emb)
        if recording_embeddings is not None and len(recording_embeddings):
            self._next["recordings"].write(np.ascontiguousarray(recording_embeddings, dtype="<f4").tobytes())
            self._next["recordings"].sync()
            pending["recordings_done"] += len(recording_embeddings)

    def finish_reembed(self) -> None:
        """Switch the atlas to the new generation (one atomic manifest write), then drop the old files."""
        m = self.manifest
        pending = m["reembed"]
        old = {"embedding": tile_array_path(self.root, "embedding", m["generation"]),
               "sqnorm": tile_array_path(self.root, "sqnorm", m["generation"]),
               "recordings": recording_embedding_path(self.root, m["generation"]),
               # derived from the old embeddings: the new generation's are computed when first needed
               "neighbours": self.root / NEIGHBOURS_FILE.format(g=m["generation"]),
               "weights": self.root / WEIGHTS_FILE.format(g=m["generation"])}
        for key in ("bundle_id", "bundle_path", "embedding_dim", "distance", "image_size", "generation"):
            m[key] = pending[key]
        m["reembed"] = None
        self.commit()
        for f in self._next.values():
            f.close()
        self._next = {}
        for f in (self._tiles.pop("embedding"), self._tiles.pop("sqnorm"), self._rec_emb):
            f.close()
        for path in old.values():
            try:
                path.unlink(missing_ok=True)
            except OSError as err:  # e.g. still memory-mapped by a reader on Windows: harmless leftover
                log.warning("could not remove the old %s (%s); it is no longer used", path, err)
        self._tiles["embedding"] = _Appender(tile_array_path(self.root, "embedding", m["generation"]),
                                             m["tiles"]["count"] * m["embedding_dim"] * 4)
        self._tiles["sqnorm"] = _Appender(tile_array_path(self.root, "sqnorm", m["generation"]),
                                          m["tiles"]["count"] * 4)
        self._rec_emb = _Appender(recording_embedding_path(self.root, m["generation"]),
                                  m["recordings"]["count"] * m["embedding_dim"] * 4)

    # -------------------------------------------------------------------------------- sources
    def add_source(self, entry: dict[str, Any]) -> SourceEntry:
        """Add an imagery source's entry (``index``: the next one); returns the entry to update in place
        (assignments to it are written at the next commit)."""
        return self._sources.add(entry)

    def source_by_path(self, path: str) -> SourceEntry | None:
        """The entry of the source with this resolved path, if the atlas has it (a dict lookup: an atlas of
        many thousands of files is opened once per build)."""
        return self._sources.by_path.get(path)

    # -------------------------------------------------------------------------------- manifest
    def commit(self) -> None:
        """Record the appended rows and progress: the changed source entries appended to their log, then
        atlas.json replaced atomically (which makes both count)."""
        m = self.manifest
        m[LOG_KEY] = self._sources.flush()
        m["format_version"] = ATLAS_VERSION  # a version-2 atlas is version 3 from its first commit on
        m["updated_at"] = now()
        write_json_atomic(self.root / MANIFEST, _on_disk(m))
        self._sources.committed()

    def close(self) -> None:
        for f in (*self._tiles.values(), self._thumbs, self._rec_meta, self._rec_emb, *self._next.values()):
            f.close()
        self._lock.release()

    def __enter__(self) -> AtlasWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _row_bytes(dtype: str, tail: tuple[int, ...]) -> int:
    return int(np.dtype(dtype).itemsize * (int(np.prod(tail)) if tail else 1))
