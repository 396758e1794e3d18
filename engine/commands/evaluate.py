"""Evaluate a trained run by cross-modal retrieval on a split (the SoundingEarth paper's metrics).

Both directions (image->audio, audio->image): R@1/5/10/100/500/1000, R@10%, median rank and
D@10/100/1000 km, with the protocol, the split and the gallery size named in the output. Writes the
metrics JSON, per-query ranks beside it (<stem>_ranks.csv) and a recall-at-k plot (<stem>_recall.png).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.data.splits import SPLIT_NAMES
from engine.evaluate import PROTOCOLS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run folder made by 'train'")
    parser.add_argument("--data", type=Path, required=True, help="dataset (SoundingEarth, pair table, demo world or campaign folder)")
    parser.add_argument("--split", default="test", choices=[*SPLIT_NAMES, "all"], help="default test")
    parser.add_argument("--protocol", default="paper", choices=list(PROTOCOLS),
                        help="paper: the reference's column-mean normalisation (default); plain: raw L2 distances")
    parser.add_argument("--checkpoint", default="best", choices=["best", "last"], help="default best")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, help="data loader processes (default: the run's)")
    parser.add_argument("--holdout-sites", metavar="A,B,C",
                        help="a campaign's test sites by name (default: the run's own, else drawn by spatial blocks)")


def run(args: argparse.Namespace) -> int:
    from engine.commands.train import cpu_threads_wait_passively

    cpu_threads_wait_passively()
    from tqdm.contrib.logging import logging_redirect_tqdm

    from engine.commands.train import holdout_names
    from engine.evaluate_run import evaluate_run
    from engine.progress import TqdmJob

    with TqdmJob("embedding", unit="pair") as job, logging_redirect_tqdm():
        report = evaluate_run(args.run, args.data, split=args.split, protocol=args.protocol,
                              checkpoint=args.checkpoint, out=args.out, device=args.device, workers=args.workers,
                              job=job, holdout_sites=holdout_names(args.holdout_sites))
    print(report["data_summary"])
    print(f"{report['split']} split, {report['gallery']} pairs, {report['protocol']} protocol, "
          f"checkpoint {report['checkpoint']['which']} (epoch {report['checkpoint']['epoch']})")
    for direction in ("image_to_audio", "audio_to_image"):
        m = report[direction]
        print(f"  {direction.replace('_', ' ')}: R@1 {m['R@1']:.3f}  R@10 {m['R@10']:.3f}  R@10% {m['R@10%']:.3f}  "
              f"median rank {m['median_rank']:.1f}  D@10 {m['D@10_km']:.2f} km")
    print(f"wrote {args.out}")
    return 0
