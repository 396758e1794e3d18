"""Build the prepared shards from a dataset the engine reads: parallel, resumable, with progress.

The dataset is read by the engine's data layer (:func:`engine.data.source.open_source`: SoundingEarth as
distributed or a pair table, the preset's split rule and audio source), and every sample is what the
engine's loader would produce: the central image region (:func:`engine.data.source.record_image`:
DCT-scaled JPEG decoding) and the whole normalised log-mel (:func:`engine.data.source.record_log_mel`).
The nvJPEG path is :mod:`engine.shards.gpu_prepare`, imported only when asked for.

Resumable: the plan (:mod:`engine.shards.plan`: which keys go into which shard) is a pure function of
the listing, the seed, the shard size and the configs; a shard whose tar and sidecar exist with the same
plan hash is kept, every other shard is (re)built, and the index is written last. A run stopped at any point (Ctrl-C, a crash, a
full disk) continues where it stopped.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.data.source import PairSource, image_ground_m, open_source
from engine.errors import DatasetError
from engine.progress import Job
from engine.shards.format import INDEX_NAME, SPLITS, completed_shard, write_index
from engine.shards.plan import PrepareConfig, ShardPlan, build_shard_cpu, plan_shards

log = logging.getLogger(__name__)


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


def prepare_shards(data_dir: str | Path, out_dir: str | Path, cfg: PrepareConfig | None = None,
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


def _write_summary(out: Path, source: PairSource, plans: list[ShardPlan], sidecars: dict[str, dict[str, Any]],
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
