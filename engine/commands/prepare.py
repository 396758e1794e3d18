"""Prepare training shards from a dataset (SoundingEarth or a pair table): the central region
of each image re-encoded at the preset's stored size, the whole normalised log-mels as float16, keys,
coordinates and the split, in WebDataset-style tar shards with an index. Parallel and resumable: rerun
the same command to continue.

Train from it with ``soundscape-engine train --shards SHARDS --preset NAME`` (the shard pipeline).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="SoundingEarth folder or pair table")
    parser.add_argument("--out", type=Path, required=True, help="shards folder (created; an earlier run's "
                        "folder is continued)")
    parser.add_argument("--preset", default="paper-r50", help="the preset whose data and front-end settings the "
                        "shards are made for (default paper-r50)")
    parser.add_argument("--image-region", type=float, help="fraction of each image's side kept around its centre "
                        "(default: the preset's, 0.75)")
    parser.add_argument("--stored-size", type=int, help="side in pixels the region is stored at (default: the "
                        "preset's)")
    parser.add_argument("--split-rule", choices=["auto", "paper", "blocked", "column"], help="train/val/test rule")
    parser.add_argument("--audio-source", choices=["auto", "spectrogram", "raw"],
                        help="SoundingEarth: the archive's spectrogram JPEGs or raw_audio through our front-end")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the stored region (default 90)")
    parser.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    parser.add_argument("--workers", type=int, default=None, help="processes for CPU decoding (default: all "
                        "cores)")
    parser.add_argument("--decoder", choices=["cpu", "cuda"], default="cpu",
                        help="cpu: Pillow with DCT-scaled decoding; cuda: nvJPEG decode and encode on the GPU")
    parser.add_argument("--limit", type=int, default=None, help="only the first N usable rows (trials)")
    parser.add_argument("--seed", type=int, help="shuffle of samples across shards (default: the preset's seed)")


def run(args: argparse.Namespace) -> int:
    from engine.config.run import load_preset
    from engine.progress import TqdmJob
    from engine.shards.plan import PrepareConfig
    from engine.shards.prepare import check_out_dir, prepare_shards
    from engine.stop_signals import stop_on_signals

    cfg = load_preset(args.preset)
    cfg = cfg.replace("data", image_region=args.image_region, stored_size=args.stored_size,
                      split_rule=args.split_rule, audio_source=args.audio_source)
    prep = PrepareConfig(data=cfg.data, front_end=cfg.front_end, quality=args.quality, shard_size=args.shard_size,
                         workers=args.workers, seed=cfg.train.seed if args.seed is None else args.seed,
                         decoder=args.decoder, limit=args.limit)
    if not args.data.exists():
        from engine.errors import DatasetError

        raise DatasetError(args.data, "not found", "point --data at a SoundingEarth folder or a pair table")
    check_out_dir(args.out)  # bad input gets its one-line error before any progress bar
    with TqdmJob("prepare", unit="img") as job, stop_on_signals(job, "the current shard"):
        summary = prepare_shards(args.data, args.out, prep, job)
    print(summary.describe())
    return 0
