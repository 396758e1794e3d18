"""Evaluating a trained run on a split of a dataset: the paper's retrieval metrics, both directions.

Images are embedded by their evaluation view (the centre of the region, as in the app), recordings
whole by the front-end's chunk rule (mean of chunk embeddings), both read from the dataset itself
(not the training cache), so clips of any length count whole.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.checkpoint import load_encoders
from engine.config.run import RunConfig
from engine.data.splits import SPLIT_NAMES
from engine.device import resolve_device
from engine.embedding import embed_loader
from engine.errors import ConfigError, DatasetError
from engine.evaluate import DIRECTIONS, PROTOCOLS, RetrievalResult, recall_curve, retrieval_metrics
from engine.files import atomic_write_bytes, json_safe
from engine.progress import Job
from engine.train.data import clip_loader, open_run_data

log = logging.getLogger(__name__)
EVAL_FORMAT = "soundscape-evaluation"
EVALUATION_SPLITS = (*SPLIT_NAMES, "all")
PROTOCOL_NOTES = {
    "paper": "L2 distances, each image's column divided by its mean over the sounds before ranking "
             "(the reference implementation's normalisation)",
    "plain": "raw L2 distances",
}
RECALL_NOTE = ("rank is 1-based with ties averaged; R@k counts rank <= k (top k); paper_R@k counts rank < k "
               "(the reference code's count, for comparison with the paper's tables); R@10% counts rank <= 10% "
               "of the gallery; D@k is the mean smallest great-circle km from a query to its top k results")


def evaluate_run(run_dir: str | Path, data_dir: str | Path, split: str = "test", protocol: str = "paper",
                 checkpoint: str = "best", out: str | Path | None = None, device: str = "auto",
                 workers: int | None = None, job: Job | None = None,
                 holdout_sites: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Embed a split with a run's encoders and compute :func:`engine.evaluate.retrieval_metrics`.

    Args:
        run_dir: a run folder made by ``train``.
        data_dir: the dataset (need not be the one trained on; the run's split rule is applied).
        split: ``train``, ``val``, ``test`` or ``all``.
        protocol: ``paper`` or ``plain``.
        checkpoint: ``best`` or ``last``.
        out: the metrics JSON to write; ``<stem>_ranks.csv`` and ``<stem>_recall.png`` go beside it.
        device: ``auto``, ``cpu``, ``cuda``...
        workers: data loader processes (default: the run's).
        job: progress and cancellation.
        holdout_sites: a recorder campaign's test sites (default: the run's own ``data.holdout_sites``).
    Returns:
        The metrics dict written to ``out``.
    Raises:
        UserInputError: a bad run folder, dataset, split or protocol.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError("--protocol", f"unknown protocol {protocol!r}", f"use one of {', '.join(PROTOCOLS)}")
    if split not in EVALUATION_SPLITS:
        raise ConfigError("--split", f"unknown split {split!r}", f"use {', '.join(EVALUATION_SPLITS)}")
    started = time.perf_counter()
    run = load_encoders(run_dir, checkpoint)
    cfg = RunConfig.from_dict(run.config)
    if workers is not None:
        cfg = cfg.replace("data", num_workers=workers)
    cfg = cfg.replace("data", holdout_sites=holdout_sites)
    dev = resolve_device(device)
    data = open_run_data(data_dir, cfg, use_cache=False)
    if split == "all":
        data.splits["all"] = sorted(i for idx in data.splits.values() for i in idx)
    if len(data.splits[split]) < 2:
        raise DatasetError(f"--split {split}", f"{len(data.splits[split])} usable pairs in {data.source.table} "
                           f"(split rule {data.source.split_rule})", "choose another split or dataset")
    run.image_encoder.to(dev)
    run.audio_encoder.to(dev)
    emb = embed_loader(run.image_encoder, run.audio_encoder, clip_loader(data, split, cfg), cfg.model.image_size,
                       cfg.augment.eval_scale, cfg.front_end, dev, job=job, total=len(data.splits[split]))
    for key, reason, message in emb.skipped:
        log.warning("skipped pair %s (%s): %s", key, reason, message)
    if len(emb.keys) < 2:
        raise DatasetError(f"--split {split}", f"only {len(emb.keys)} readable pairs", "check the dataset's files")
    result = retrieval_metrics(emb.image, emb.audio, emb.lon, emb.lat, protocol=protocol)
    skipped = data.report.to_dict()
    for _, reason, _ in emb.skipped:
        skipped[reason] = skipped.get(reason, 0) + 1
    report: dict[str, Any] = {
        "format": EVAL_FORMAT, "version": 1, "run": str(Path(run_dir).resolve()),
        "checkpoint": {"which": checkpoint, **{k: run.checkpoint.get(k) for k in ("epoch", "step")}},
        "data": str(Path(data_dir).resolve()), "split": split, "split_rule": data.source.split_rule,
        "protocol": protocol, "protocol_note": PROTOCOL_NOTES[protocol], "definitions": RECALL_NOTE,
        "gallery": result.gallery, "skipped": skipped, "data_summary": data.describe(),
        **{d: getattr(result, d).metrics for d in DIRECTIONS},
        "seconds": round(time.perf_counter() - started, 2),
    }
    if out is not None:
        out = Path(out)
        ranks_path = out.with_name(f"{out.stem}_ranks.csv")
        plot_path = out.with_name(f"{out.stem}_recall.png")
        write_ranks(ranks_path, emb.keys, result)
        plot_recall(plot_path, result, title=f"{Path(run_dir).name}: {split} split, {protocol} protocol")
        report["files"] = {"ranks": str(ranks_path), "recall_plot": str(plot_path)}
        atomic_write_bytes(out, lambda f: f.write(json.dumps(json_safe(report), indent=2, allow_nan=False).encode()))
    return report


def write_ranks(path: Path, keys: list[str], result: RetrievalResult) -> None:
    """Per-query ranks and nearest-result distances of both directions as CSV."""
    i2a, a2i = result.image_to_audio, result.audio_to_image
    ks = sorted(i2a.km_at)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "rank_image_to_audio", "rank_audio_to_image",
                         *[f"km@{k}_image_to_audio" for k in ks], *[f"km@{k}_audio_to_image" for k in ks]])
        for i, key in enumerate(keys):
            writer.writerow([key, i2a.ranks[i], a2i.ranks[i], *[round(float(i2a.km_at[k][i]), 4) for k in ks],
                             *[round(float(a2i.km_at[k][i]), 4) for k in ks]])


def plot_recall(path: Path, result: RetrievalResult, title: str) -> None:
    """Recall at k (fraction of queries whose partner ranks within the top k) for both directions."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # The object API with the Agg canvas: no pyplot, no global backend switch, no display needed.
    fig = Figure(figsize=(6, 4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, direction in (("image → audio", result.image_to_audio), ("audio → image", result.audio_to_image)):
        ks, recall = recall_curve(direction.ranks, result.gallery, points=400)
        ax.plot(ks, recall, label=f"{name} (median rank {direction.metrics['median_rank']:g})")
    ks = np.arange(1, result.gallery + 1)
    ax.plot(ks, ks / result.gallery, "k:", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_xlim(1, result.gallery)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"k (gallery of {result.gallery})")
    ax.set_ylabel("recall at k")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
