"""Generate the synthetic demo world: land cover, a georeferenced GeoTIFF mosaic, aerial tiles and
recordings mixed from per-class sound sources, written as a pair table. Same seed, same content."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created; must be empty or absent)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", choices=["tiny", "small", "default"], default="default",
                        help="tiny: for tests (seconds); small: quick experiments; default: the app's demo")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")


def run(args: argparse.Namespace) -> int:
    from engine.demo_world import generate_world

    summary = generate_world(args.out, seed=args.seed, size=args.size, workers=args.workers)
    print(summary.describe())
    return 0
