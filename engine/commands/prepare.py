"""Prepare a sharded training cache from a SoundingEarth folder: the central region of each image re-encoded
at the size the augmentation needs, the log-mels as float16, keys, coordinates and the split, in
WebDataset-style tar shards with an index. Parallel and resumable: rerun the same command to continue.

Training reads it with ``soundscape-engine train --cache CACHE`` (the GPU input pipeline).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="SoundingEarth folder (metadata.csv, images/, "
                        "spectrograms/)")
    parser.add_argument("--out", type=Path, required=True, help="cache folder (created; an earlier run's "
                        "folder is continued)")
    parser.add_argument("--region", type=int, default=768, help="side of the central image region kept, in "
                        "pixels of a 1024 px image (default 768)")
    parser.add_argument("--stored-size", type=int, default=384, help="side the region is stored at "
                        "(default 384: a 1/2-scale DCT decode, 0.4 m per pixel)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the stored region (default 90)")
    parser.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    parser.add_argument("--workers", type=int, default=None, help="processes for CPU decoding (default: all "
                        "cores)")
    parser.add_argument("--decoder", choices=["cpu", "cuda"], default="cpu",
                        help="cpu: Pillow with DCT-scaled decoding; cuda: nvJPEG decode and encode on the GPU")
    parser.add_argument("--limit", type=int, default=None, help="only the first N usable rows (trials)")
    parser.add_argument("--seed", type=int, default=0, help="shuffle of samples across shards (default 0)")


def run(args: argparse.Namespace) -> int:
    from engine.progress import TqdmJob
    from engine.shards.format import CacheGeometry
    from engine.shards.prepare import PrepareConfig, check_out_dir, prepare_cache
    from engine.shards.source import check_soundingearth

    cfg = PrepareConfig(geometry=CacheGeometry(region=args.region, stored=args.stored_size, quality=args.quality),
                        shard_size=args.shard_size, workers=args.workers, seed=args.seed, decoder=args.decoder,
                        limit=args.limit)
    check_soundingearth(args.data)  # bad input gets its one-line error before any progress bar
    check_out_dir(args.out)
    with TqdmJob("prepare", unit="img") as job:
        summary = prepare_cache(args.data, args.out, cfg, job)
    print(summary.describe())
    return 0
