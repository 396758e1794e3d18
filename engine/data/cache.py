"""A decode-once cache of a dataset's image regions and log-mels (torch-free).

Decoding a JPEG and running the audio front-end cost far more than a training step of the small demo
model, so small datasets are decoded once, in parallel, into a cache folder and memory-mapped:

    CACHE/<fingerprint>/images.npy     (N, S, S, 3) uint8: each record's central image region
    CACHE/<fingerprint>/mels.f16       every record's normalised log-mel, (n_mels, T) each, float16, concatenated
    CACHE/<fingerprint>/offsets.npy    (N + 1,) element offsets into mels.f16
    CACHE/<fingerprint>/index.json     fingerprint, keys, per-record error (unreadable files) and full length

The fingerprint covers the table (path, size, modification time), the records, the image region
and size, and the whole front-end config, so a change to any of them builds a new cache. A folder is
written under a temporary name and renamed when complete, so an interrupted build leaves nothing
half-made. Clips longer than ``cache_max_seconds`` keep their first part (evaluation reads the
source for whole clips).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.audio import FrontEndConfig, load_audio
from engine.config.data import DataConfig
from engine.data.records import SPECTROGRAM_JPG, PairRecord
from engine.data.source import PairSource, record_image, record_log_mel
from engine.errors import AudioFileError, Cancelled, ImageFileError
from engine.progress import Job

log = logging.getLogger(__name__)
CACHE_VERSION = 1


def default_cache_root() -> Path:
    """``$SOUNDSCAPE_CACHE`` or the user's cache folder (platformdirs)."""
    if os.environ.get("SOUNDSCAPE_CACHE"):
        return Path(os.environ["SOUNDSCAPE_CACHE"])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("soundscape-mapper")) / "pairs"


def fingerprint(source: PairSource) -> str:
    """A hash of everything that changes the cached arrays."""
    stat = source.table.stat()
    h = hashlib.sha256()
    h.update(json.dumps({
        "version": CACHE_VERSION, "table": str(source.table.resolve()), "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns, "audio_source": source.audio_source,
        "image_region": source.data_cfg.image_region, "stored_size": source.data_cfg.stored_size,
        "cache_max_seconds": source.data_cfg.cache_max_seconds, "front_end": source.front_end.to_dict(),
    }, sort_keys=True).encode())
    for r in source.records:
        h.update(f"{r.key}\0{r.image}\0{r.audio}\n".encode())
    return h.hexdigest()[:24]


@dataclass
class PairCache:
    """A built cache, memory-mapped. ``errors[i]`` is None for a usable record, else why it is not."""

    folder: Path
    images: np.ndarray
    mels: np.ndarray
    offsets: np.ndarray
    full_frames: np.ndarray
    errors: list[str | None]
    n_mels: int

    def image(self, i: int) -> np.ndarray:
        return np.asarray(self.images[i])

    def log_mel(self, i: int) -> np.ndarray:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.mels[a:b].reshape(self.n_mels, -1).astype(np.float32)

    def truncated(self, i: int) -> bool:
        return int(self.full_frames[i]) * self.n_mels > int(self.offsets[i + 1] - self.offsets[i])

    @classmethod
    def open(cls, folder: Path) -> PairCache:
        index = json.loads((folder / "index.json").read_text())
        offsets = np.load(folder / "offsets.npy")
        total = int(offsets[-1])
        mels = (np.memmap(folder / "mels.f16", dtype=np.float16, mode="r", shape=(total,)) if total
                else np.zeros(0, np.float16))
        return cls(folder, np.load(folder / "images.npy", mmap_mode="r"), mels, offsets,
                   np.asarray(index["full_frames"], np.int64), index["errors"], int(index["n_mels"]))


_Task = tuple[PairRecord, DataConfig, FrontEndConfig, int, bool]
# Mono samples at the front-end's rate -> the normalised (n_mels, T) log-mel; e.g. the device log-mel of
# engine.device_log_mel, so that a CUDA run's workers only decode and resample.
LogMelFn = Callable[[np.ndarray], np.ndarray]


def _decode(task: _Task) -> tuple[np.ndarray | None, np.ndarray | None, int, str | None]:
    """Decode one record (runs in a worker process): (image, mel float16, full frames, error); with
    ``samples_only`` an audio file's mono samples come back in place of its log-mel (full frames -1)."""
    record, data_cfg, front_end, max_frames, samples_only = task
    try:
        image = record_image(record, data_cfg)
    except ImageFileError as err:
        return None, None, 0, f"unreadable image: {err}"
    try:
        if samples_only and record.audio_kind != SPECTROGRAM_JPG:
            samples, _ = load_audio(record.audio, front_end.sample_rate, front_end.resample_quality)
            return image, samples, -1, None
        mel = record_log_mel(record, front_end)
    except AudioFileError as err:
        return None, None, 0, f"unreadable audio: {err}"
    return image, np.ascontiguousarray(mel[:, :max_frames], dtype=np.float16), int(mel.shape[1]), None


def build_cache(source: PairSource, folder: Path, workers: int = 2, job: Job | None = None,
                log_mel_fn: LogMelFn | None = None) -> PairCache:
    """Decode every record of ``source`` into ``folder`` (see module docstring). With ``log_mel_fn`` the
    workers decode audio files to samples and ``log_mel_fn`` (in this process) makes their log-mels."""
    n, size = len(source), source.data_cfg.stored_size
    max_frames = max(1, int(source.data_cfg.cache_max_seconds * source.front_end.frames_per_second))
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    offsets = np.zeros(n + 1, np.int64)
    full_frames = np.zeros(n, np.int64)
    errors: list[str | None] = [None] * n
    tasks = ((r, source.data_cfg, source.front_end, max_frames, log_mel_fn is not None) for r in source.records)
    executor = None
    try:
        if workers > 1 and n > 16:
            ctx = multiprocessing.get_context("spawn")  # no fork of a process that may run torch threads
            executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
            results = executor.map(_decode, tasks, chunksize=max(1, min(32, n // (workers * 8))))
        else:
            results = map(_decode, tasks)
        with open(tmp / "mels.f16", "wb") as mel_file:
            for i, (image, mel, frames, error) in enumerate(results):
                if job is not None:
                    job.check()
                    job.report(i + 1, n, "decoding images and audio once into the cache")
                if error is not None:
                    errors[i] = error
                    log.warning("skipped: %s", error)
                else:
                    if frames < 0:  # samples: the log-mel is made here
                        whole = log_mel_fn(mel)  # type: ignore[misc]
                        frames = int(whole.shape[1])
                        mel = np.ascontiguousarray(whole[:, :max_frames], dtype=np.float16)
                    images[i] = image
                    mel_file.write(mel.tobytes())
                    full_frames[i] = frames
                    offsets[i + 1] = offsets[i] + mel.size
                    continue
                offsets[i + 1] = offsets[i]
        images.flush()
        del images
        np.save(tmp / "offsets.npy", offsets)
        n_mels = source.front_end.n_mels
        (tmp / "index.json").write_text(json.dumps({
            "fingerprint": folder.name, "n_mels": n_mels, "keys": [r.key for r in source.records],
            "errors": errors, "full_frames": full_frames.tolist()}))
    except (Cancelled, KeyboardInterrupt, Exception):
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
            executor = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if executor is not None:
            executor.shutdown()
    if folder.exists():  # another process finished the same cache first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, folder)
    return PairCache.open(folder)


def open_cache(source: PairSource, cache_root: Path | None = None, workers: int = 2,
               job: Job | None = None, log_mel_fn: LogMelFn | None = None) -> PairCache:
    """The cache of ``source`` under ``cache_root``, built on first use (``log_mel_fn``: see build_cache)."""
    folder = (cache_root or default_cache_root()) / fingerprint(source)
    if (folder / "index.json").is_file():
        log.info("using the decoded cache %s", folder)
        return PairCache.open(folder)
    log.info("decoding %d pairs once into %s", len(source), folder)
    return build_cache(source, folder, workers, job, log_mel_fn)
