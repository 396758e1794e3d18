"""Generate the synthetic demo world: land cover, a georeferenced GeoTIFF mosaic, aerial images and
recordings mixed from per-class sound sources, written as a pair table. Same seed, same content.

Sizes: tiny (64 recordings of 3 s, for tests, seconds on one core), small (400 of 5 s) and default
(2,000 of 5 s, about 220 MB, the app's demo world). Nothing is written to --out until the world is
complete; an existing non-empty folder is never touched."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created; must be empty or absent)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", choices=["tiny", "small", "default"], default="default",
                        help="tiny: for tests (seconds); small: quick experiments; default: the app's demo")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")


def run(args: argparse.Namespace) -> int:
    from engine.demo_world import generate_world
    from engine.demo_world.generate import check_request
    from engine.errors import Cancelled
    from engine.progress import TqdmJob

    check_request(args.out, args.seed, args.size, args.workers)  # bad input: one line, before any bar
    try:
        with TqdmJob("demo world", unit="step", leave=False) as job:
            summary = generate_world(args.out, seed=args.seed, size=args.size, workers=args.workers, job=job)
    except (KeyboardInterrupt, Cancelled):
        print(f"interrupted; nothing was written to {args.out}", file=sys.stderr)
        return 130
    print(summary.describe())
    return 0
