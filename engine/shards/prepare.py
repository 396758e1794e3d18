"""Build the sharded cache from a SoundingEarth folder: parallel, resumable, with progress. Torch-free
(the nvJPEG path lives in :mod:`engine.shards.gpu_prepare` and is imported only when asked for).

Resumable: the plan (which keys go into which shard) is a pure function of the listing, the seed, the
shard size and the geometry; a shard whose tar and sidecar exist with the same plan hash is kept, every
other shard is (re)built, and the index is written last. A run stopped at any point (Ctrl-C, a crash, a
full disk) continues where it stopped.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DatasetError
from engine.progress import Job
from engine.shards.codec import decode_region, decode_spectrogram, encode_jpeg
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
from engine.shards.source import SourceRecord, scan_soundingearth

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareConfig:
    """What ``prepare`` builds.

    Args:
        geometry: the image region and its stored size (see :mod:`engine.shards.format`).
        shard_size: samples per shard (about 60-300 MB per 1,000 samples, depending on log-mel length).
        workers: processes for the CPU path (None: all cores).
        seed: shuffles the samples of each split across shards, so any run of shards is a random mix.
        decoder: ``cpu`` (Pillow, DCT-scaled) or ``cuda`` (nvJPEG decode and encode on the GPU).
        limit: only the first ``limit`` usable rows (for quick trials and benchmarks).
    """

    geometry: CacheGeometry = field(default_factory=CacheGeometry)
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


@dataclass(frozen=True)
class ShardPlan:
    name: str
    split: str
    records: tuple[SourceRecord, ...]
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


def plan_shards(records: Iterable[SourceRecord], cfg: PrepareConfig) -> list[ShardPlan]:
    """Split the records into shards: per split, a seeded shuffle, then runs of ``shard_size``."""
    by_split: dict[str, list[SourceRecord]] = {s: [] for s in SPLITS}
    for r in records:
        by_split[r.split].append(r)
    plans = []
    for split in SPLITS:
        rows = sorted(by_split[split], key=lambda r: int(r.key) if r.key.isdigit() else r.key)
        order = np.random.default_rng([cfg.seed, SPLITS.index(split)]).permutation(len(rows))
        rows = [rows[i] for i in order]
        for number, start in enumerate(range(0, len(rows), cfg.shard_size)):
            chunk = tuple(rows[start:start + cfg.shard_size])
            plans.append(ShardPlan(shard_name(split, number), split, chunk,
                                   plan_hash([r.key for r in chunk], cfg.geometry)))
    return plans


def encode_record(record: SourceRecord, geometry: CacheGeometry, jpeg: bytes | None = None) -> RawSample:
    """One record -> a cache sample. ``jpeg``: the region already re-encoded (the GPU path).

    Raises:
        _SkipSample: with the reason, when a file is missing or cannot be decoded.
    """
    if jpeg is None:
        try:
            data = record.image.read_bytes()
        except OSError:
            raise _SkipSample("missing image") from None
        try:
            region = decode_region(data, geometry)
        except Exception:  # noqa: BLE001 - Pillow raises many types for damaged files
            raise _SkipSample("unreadable image") from None
        jpeg = encode_jpeg(region, geometry.quality)
    try:
        spec = record.spectrogram.read_bytes()
    except OSError:
        raise _SkipSample("missing spectrogram") from None
    try:
        mel = decode_spectrogram(spec)
    except Exception:  # noqa: BLE001
        raise _SkipSample("unreadable spectrogram") from None
    return RawSample(record.key, jpeg, mel, record.lon, record.lat, record.split, record.long_key)


class _SkipSample(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def build_shard_cpu(plan: ShardPlan, out_dir: Path, geometry: CacheGeometry) -> dict[str, Any]:
    """Decode, re-encode and write one shard (runs in a worker process). Returns its sidecar."""
    samples: list[RawSample] = []
    skipped: dict[str, list[str]] = {}
    for record in plan.records:
        try:
            samples.append(encode_record(record, geometry))
        except _SkipSample as skip:
            skipped.setdefault(skip.reason, []).append(record.key)
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
    """Build (or continue building) the cache of a SoundingEarth folder.

    Args:
        data_dir: the SoundingEarth folder (metadata.csv, images/, spectrograms/).
        out_dir: the cache folder; created, or an earlier run's folder to continue.
        cfg: geometry, shard size, workers, decoder.
        job: progress (samples done of total) and cancellation; finished shards are kept on cancel.

    Returns:
        A summary (counts per split, skip reasons, shards kept from an earlier run).

    Raises:
        DatasetError: a missing folder or metadata.csv, a folder that is not a cache, no usable rows.
        Cancelled: when ``job`` was cancelled (finished shards are kept; a rerun continues).
    """
    cfg = cfg or PrepareConfig()
    job = job or Job()
    out = Path(out_dir)
    scan = scan_soundingearth(data_dir)
    records = scan.records[: cfg.limit] if cfg.limit else scan.records
    if not records:
        raise DatasetError(data_dir, f"no usable rows among {scan.rows}", "check images/ and spectrograms/")
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.tmp"):
        stale.unlink()
    plans = plan_shards(records, cfg)
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

        for plan, side in build_shards_cuda(pending, out, cfg.geometry):
            sidecars[plan.name] = side
            done += len(plan.records)
            job.report(done, total, plan.name)
            job.check()
    elif pending:
        _build_cpu(pending, out, cfg, job, sidecars, done, total)
    # A removed-from-plan shard (e.g. another --shard-size) must not linger beside the new ones.
    planned = {p.name for p in plans}
    for old in out.glob("*-*.tar"):
        if old.name not in planned:
            old.unlink()
            old.with_suffix(".json").unlink(missing_ok=True)
    return _write_summary(out, data_dir, plans, sidecars, scan.skipped, scan.rows, reused, cfg)


def _build_cpu(pending: list[ShardPlan], out: Path, cfg: PrepareConfig, job: Job,
               sidecars: dict[str, dict[str, Any]], done: int, total: int) -> None:
    workers = max(1, min(cfg.workers or os.cpu_count() or 1, len(pending)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        running: dict[Future[dict[str, Any]], ShardPlan] = {}
        queue = list(pending)
        try:
            while queue or running:
                # Keep each worker busy with at most two shards so a cancel stops quickly.
                while queue and len(running) < 2 * workers:
                    plan = queue.pop(0)
                    running[pool.submit(build_shard_cpu, plan, out, cfg.geometry)] = plan
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


def _write_summary(out: Path, data_dir: str | Path, plans: list[ShardPlan], sidecars: dict[str, dict[str, Any]],
                   scan_skipped: Counter[str], rows: int, reused: int, cfg: PrepareConfig) -> PrepareSummary:
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter(scan_skipped)
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
                      "source": str(Path(data_dir).resolve()), "seed": cfg.seed, "shard_size": cfg.shard_size,
                      "rows": rows})
    return PrepareSummary(out, len(shards), reused, dict(counts), dict(skipped), rows)

