"""Build the sharded cache from a dataset the engine reads: parallel, resumable, with progress.

The dataset is read by the engine's data layer (:func:`engine.data.source.open_source`: SoundingEarth as
distributed or a pair table, the preset's split rule and audio source), and every sample is what the
engine's loader would produce: the central image region (:func:`engine.data.source.record_image`:
DCT-scaled JPEG decoding) and the whole normalised log-mel (:func:`engine.data.source.record_log_mel`).
The nvJPEG path is :mod:`engine.shards.gpu_prepare`, imported only when asked for.

Resumable: the plan (which keys go into which shard) is a pure function of the listing, the seed, the
shard size and the configs; a shard whose tar and sidecar exist with the same plan hash is kept, every
other shard is (re)built, and the index is written last. A run stopped at any point (Ctrl-C, a crash, a
full disk) continues where it stopped.
"""

from __future__ import annotations

import io
import logging
import os
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.audio import FrontEndConfig, load_audio
from engine.data.config import DataConfig
from engine.data.records import SPECTROGRAM_JPG, PairRecord
from engine.data.source import image_ground_m, open_source, record_image, record_log_mel
from engine.errors import AudioFileError, DatasetError, ImageFileError
from engine.progress import Job
from engine.shards.format import (
    INDEX_NAME,
    SPLITS,
    CacheGeometry,
    RawSample,
    completed_shard,
    plan_hash,
    shard_name,
    write_index,
    write_shard,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareConfig:
    """What ``prepare`` builds.

    Args:
        data: how the dataset is read (image region and stored size, split rule, audio source): a preset's.
        front_end: the log-mel front-end (normalisation; raw audio) of the preset.
        quality: JPEG quality of the stored regions.
        shard_size: samples per shard.
        workers: processes for the CPU path (None: all cores).
        seed: the shuffle of samples across shards (the split is the engine's, independent of seeds).
        decoder: ``cpu`` (Pillow, DCT-scaled) or ``cuda`` (nvJPEG decode and encode on the GPU).
        limit: only the first ``limit`` usable pairs (for quick trials and benchmarks).
    """

    data: DataConfig = field(default_factory=DataConfig)
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)
    quality: int = 90
    shard_size: int = 1000
    workers: int | None = None
    seed: int = 0
    decoder: str = "cpu"
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise DatasetError("--shard-size", f"{self.shard_size} is not a positive count", "use e.g. 1000")
        if self.decoder not in ("cpu", "cuda"):
            raise DatasetError("--decoder", f"unknown decoder {self.decoder!r}", "use 'cpu' or 'cuda'")
        _ = self.geometry  # validates region, stored size and quality

    @property
    def geometry(self) -> CacheGeometry:
        return CacheGeometry(region=round(self.data.image_region * 1024), stored=self.data.stored_size,
                             quality=self.quality)


@dataclass(frozen=True)
class ShardPlan:
    name: str
    split: str
    records: tuple[PairRecord, ...]
    plan: str


@dataclass
class PrepareSummary:
    out: Path
    shards: int
    reused: int
    counts: dict[str, int]
    skipped: dict[str, int]
    rows: int

    def describe(self) -> str:
        counts = ", ".join(f"{s} {self.counts.get(s, 0):,}" for s in SPLITS)
        skipped = ", ".join(f"{n:,} {reason}" for reason, n in sorted(self.skipped.items())) or "none"
        return (f"{self.out}: {self.shards} shards ({self.reused} kept from an earlier run); "
                f"{self.rows:,} rows -> {counts}; skipped: {skipped}")


def _key_order(record: PairRecord) -> tuple[int, str]:
    return (record.number if record.number is not None else 0, record.key)


def plan_shards(records: list[PairRecord], splits: list[str], cfg: PrepareConfig) -> list[ShardPlan]:
    """Split the records into shards: per split, a seeded shuffle, then runs of ``shard_size``."""
    config = {"data": cfg.data.to_dict(), "front_end": cfg.front_end.to_dict()}
    plans = []
    for split in SPLITS:
        rows = sorted((r for r, s in zip(records, splits, strict=True) if s == split), key=_key_order)
        order = np.random.default_rng([cfg.seed, SPLITS.index(split)]).permutation(len(rows))
        rows = [rows[i] for i in order]
        for number, start in enumerate(range(0, len(rows), cfg.shard_size)):
            chunk = tuple(rows[start:start + cfg.shard_size])
            plans.append(ShardPlan(shard_name(split, number), split, chunk,
                                   plan_hash([r.key for r in chunk], cfg.geometry, config)))
    return plans


class SkipSample(Exception):
    """A record that cannot be cached; ``reason`` is one of the engine's skip reasons."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """uint8 (H, W, 3) RGB -> JPEG bytes (Pillow, libjpeg-turbo)."""
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_record(record: PairRecord, split: str, cfg: PrepareConfig, jpeg: bytes | None = None) -> RawSample:
    """One record -> a cache sample. ``jpeg``: the region already re-encoded (the GPU path).

    Raises:
        SkipSample: with the reason, when the image or the audio cannot be decoded.
    """
    if jpeg is None:
        try:
            jpeg = encode_jpeg(record_image(record, cfg.data), cfg.quality)
        except ImageFileError:
            raise SkipSample("unreadable image") from None
    try:
        mel = record_log_mel(record, cfg.front_end)
    except AudioFileError:
        raise SkipSample("unreadable audio") from None
    return RawSample(record.key, jpeg, mel.astype(np.float16), record.lon, record.lat, split)


def build_shard_cpu(plan: ShardPlan, out_dir: Path, cfg: PrepareConfig) -> dict[str, Any]:
    """Decode, re-encode and write one shard (runs in a worker process). Returns its sidecar."""
    samples: list[RawSample] = []
    skipped: dict[str, list[str]] = {}
    for record in plan.records:
        try:
            samples.append(encode_record(record, plan.split, cfg))
        except SkipSample as skip:
            skipped.setdefault(skip.reason, []).append(record.key)
    return finish_shard(plan, out_dir, samples, skipped)


def build_shard_from_coded(plan: ShardPlan, out_dir: Path, coded: list[bytes | str],
                           cfg: PrepareConfig) -> dict[str, Any]:
    """Finish a shard whose regions are already re-encoded (the nvJPEG path): decode the log-mels and write
    it. ``coded[i]`` is record i's JPEG or its skip reason. Runs in a worker process. Returns the sidecar."""
    samples: list[RawSample] = []
    skipped: dict[str, list[str]] = {}
    for record, jpeg in zip(plan.records, coded, strict=True):
        try:
            if isinstance(jpeg, str):
                raise SkipSample(jpeg)
            samples.append(encode_record(record, plan.split, cfg, jpeg=jpeg))
        except SkipSample as skip:
            skipped.setdefault(skip.reason, []).append(record.key)
    return finish_shard(plan, out_dir, samples, skipped)


def decode_audio(records: list[PairRecord], cfg: PrepareConfig) -> list[tuple[str, np.ndarray] | str]:
    """The audio of some records for a device log-mel (runs in a worker process): per record
    ``("samples", mono float32 at the front-end's rate)`` for an audio file, ``("mel", normalised
    log-mel)`` for a spectrogram JPEG (nothing to compute), or the skip reason."""
    out: list[tuple[str, np.ndarray] | str] = []
    for record in records:
        try:
            if record.audio_kind == SPECTROGRAM_JPG:
                out.append(("mel", record_log_mel(record, cfg.front_end)))
            else:
                out.append(("samples", load_audio(record.audio, cfg.front_end.sample_rate,
                                                  cfg.front_end.resample_quality)[0]))
        except AudioFileError:
            out.append("unreadable audio")
    return out


def build_shard_from_parts(plan: ShardPlan, out_dir: Path, coded: list[bytes | str],
                           mels: list[np.ndarray | str]) -> dict[str, Any]:
    """Write a shard whose regions and log-mels are both ready (the nvJPEG path with device log-mels).
    ``coded[i]``/``mels[i]``: record i's JPEG / normalised log-mel, or a skip reason. Returns the sidecar."""
    samples: list[RawSample] = []
    skipped: dict[str, list[str]] = {}
    for record, jpeg, mel in zip(plan.records, coded, mels, strict=True):
        reason = jpeg if isinstance(jpeg, str) else mel if isinstance(mel, str) else None
        if reason is not None:
            skipped.setdefault(reason, []).append(record.key)
            continue
        samples.append(RawSample(record.key, jpeg, mel.astype(np.float16), record.lon, record.lat, plan.split))
    return finish_shard(plan, out_dir, samples, skipped)


def finish_shard(plan: ShardPlan, out_dir: Path, samples: list[RawSample],
                 skipped: dict[str, list[str]]) -> dict[str, Any]:
    sidecar = {"name": plan.name, "split": plan.split, "count": len(samples), "plan": plan.plan,
               "n_mels": int(samples[0].mel.shape[0]) if samples else 0,
               "keys": [s.key for s in samples], "skipped": skipped}
    write_shard(out_dir / plan.name, samples, sidecar)
    return sidecar


def check_out_dir(out: Path) -> None:
    """Refuse a path that is a file, or a non-empty folder that is not a cache (never overwrite work)."""
    if out.exists() and not out.is_dir():
        raise DatasetError(out, "exists and is not a folder", "name a new folder for the cache")
    if out.is_dir():
        foreign = [p.name for p in out.iterdir()
                   if not (p.name == INDEX_NAME or p.name.startswith(SPLITS) or p.name.endswith(".tmp"))]
        if foreign:
            raise DatasetError(out, f"is not empty and not a cache (holds {foreign[0]!r})",
                               "name a new folder, or the folder of an earlier prepare run to continue it")


def prepare_cache(data_dir: str | Path, out_dir: str | Path, cfg: PrepareConfig | None = None,
                  job: Job | None = None) -> PrepareSummary:
    """Build (or continue building) the cache of a dataset.

    Args:
        data_dir: a SoundingEarth folder or a pair table (whatever ``train --data`` reads).
        out_dir: the cache folder; created, or an earlier run's folder to continue.
        cfg: configs, shard size, workers, decoder.
        job: progress (samples done of total) and cancellation; finished shards are kept on cancel.

    Returns:
        A summary (counts per split, skip reasons, shards kept from an earlier run).

    Raises:
        DatasetError: a missing folder or table, a folder that is not a cache, no usable rows.
        Cancelled: when ``job`` was cancelled (finished shards are kept; a rerun continues).
    """
    cfg = cfg or PrepareConfig()
    job = job or Job()
    out = Path(out_dir)
    source = open_source(data_dir, cfg.data, cfg.front_end)  # the split of `train --data` (not seeded)
    records, splits = source.records, source.splits
    if cfg.limit:
        records, splits = records[: cfg.limit], splits[: cfg.limit]
    if not records:
        raise DatasetError(data_dir, f"no usable rows ({source.report.describe()})", "check the dataset's files")
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.tmp"):
        stale.unlink()
    plans = plan_shards(records, splits, cfg)
    sidecars: dict[str, dict[str, Any]] = {}
    for p in plans:
        if (side := completed_shard(out / p.name, p.plan)) is not None:
            sidecars[p.name] = side
    reused = len(sidecars)
    pending = [p for p in plans if p.name not in sidecars]
    total = len(records)
    done = sum(len(p.records) for p in plans if p.name in sidecars)
    log.info("preparing %d shards (%d kept from an earlier run) with the %s decoder", len(plans), reused,
             cfg.decoder)
    job.report(done, total, f"{reused} shards kept")
    if pending and cfg.decoder == "cuda":
        from engine.shards.gpu_prepare import build_shards_cuda

        for plan, side in build_shards_cuda(pending, out, cfg, processes=cfg.workers):
            sidecars[plan.name] = side
            done += len(plan.records)
            job.report(done, total, plan.name)
            job.check()
    elif pending:
        _build_cpu(pending, out, cfg, job, sidecars, done, total)
    # A shard no longer in the plan (e.g. another --shard-size) must not linger beside the new ones.
    planned = {p.name for p in plans}
    for old in out.glob("*-*.tar"):
        if old.name not in planned:
            old.unlink()
            old.with_suffix(".json").unlink(missing_ok=True)
    skipped = Counter({r: n for r, n in source.report.counts.items()})
    return _write_summary(out, source, plans, sidecars, skipped, reused, cfg)


def _build_cpu(pending: list[ShardPlan], out: Path, cfg: PrepareConfig, job: Job,
               sidecars: dict[str, dict[str, Any]], done: int, total: int) -> None:
    workers = max(1, min(cfg.workers or os.cpu_count() or 1, len(pending)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        running: dict[Future[dict[str, Any]], ShardPlan] = {}
        queue = list(pending)
        try:
            while queue or running:
                # At most two shards per worker in flight, so a cancel stops quickly.
                while queue and len(running) < 2 * workers:
                    plan = queue.pop(0)
                    running[pool.submit(build_shard_cpu, plan, out, cfg)] = plan
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    plan = running.pop(fut)
                    sidecars[plan.name] = fut.result()
                    done += len(plan.records)
                    job.report(done, total, plan.name)
                job.check()
        except BaseException:
            for fut in running:
                fut.cancel()
            raise


def _write_summary(out: Path, source: Any, plans: list[ShardPlan], sidecars: dict[str, dict[str, Any]],
                   skipped: Counter[str], reused: int, cfg: PrepareConfig) -> PrepareSummary:
    counts: Counter[str] = Counter()
    shards = []
    n_mels = 0
    for p in plans:
        side = sidecars[p.name]
        counts[p.split] += side["count"]
        for reason, keys in side["skipped"].items():
            skipped[reason] += len(keys)
        if side["count"]:
            shards.append({"name": p.name, "split": p.split, "count": side["count"]})
        n_mels = n_mels or int(side.get("n_mels", 0))
    write_index(out, {"geometry": cfg.geometry.to_dict(), "shards": shards,
                      "counts": {s: counts[s] for s in SPLITS}, "skipped": dict(skipped), "n_mels": n_mels,
                      "source": str(Path(source.root).resolve()), "layout": source.layout, "kind": source.kind,
                      "split_rule": source.split_rule, "seed": cfg.seed, "shard_size": cfg.shard_size,
                      "rows": source.report.rows, "data": cfg.data.to_dict(), "image_ground_m": image_ground_m(source),
                      "log_mel": {"normalised": cfg.front_end.normalisation != "none",
                                  "audio_source": source.audio_source, "front_end": cfg.front_end.to_dict()}})
    return PrepareSummary(out, len(shards), reused, dict(counts), dict(skipped), source.report.rows)
