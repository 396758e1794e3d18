"""Generate the synthetic demo world: land cover, a georeferenced GeoTIFF mosaic, aerial images and
recordings mixed from per-class sound sources, written as a pair table. Same seed, same content.

Sizes: tiny (64 recordings of 3 s, for tests, seconds on one core), small (400 of 5 s) and default
(2,000 of 5 s, about 220 MB, the app's demo world). Nothing is written to --out until the world is
complete; an existing non-empty folder is never touched.

With --campaign it writes a synthetic field campaign instead: recorder folders (AudioMoth and Song Meter
files, some with GUANO), a sites table and the mosaic as an orthophoto, with a daily cycle in the sounds;
scan it with `campaign scan`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created; must be empty or absent)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", choices=["tiny", "small", "default"], default=None,
                        help="tiny: for tests (seconds); small: quick experiments; default: the app's demo "
                             "(with --campaign: the world's size, default small)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    camp = parser.add_argument_group("a field campaign (--campaign)")
    camp.add_argument("--campaign", action="store_true", help="write a recorder campaign instead of a pair table")
    camp.add_argument("--sites", type=int, default=40, help="recording sites (default 40)")
    camp.add_argument("--files-per-site", type=int, default=12, help="files per site over one day (default 12)")
    camp.add_argument("--file-seconds", type=float, default=60.0, help="length of each file (default 60 s)")
    camp.add_argument("--sample-rate", type=int, default=22_050, help="Hz (default 22050, the front-end's rate)")


def run(args: argparse.Namespace) -> int:
    if args.campaign:
        return _campaign(args)
    args.size = args.size or "default"
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


def _campaign(args: argparse.Namespace) -> int:
    from engine.campaign.demo import generate_campaign
    from engine.errors import Cancelled
    from engine.progress import TqdmJob

    try:
        with TqdmJob("demo campaign", unit="step", leave=False) as job:
            summary = generate_campaign(args.out, sites=args.sites, files_per_site=args.files_per_site,
                                        file_seconds=args.file_seconds, seed=args.seed, world=args.size or "small",
                                        sample_rate=args.sample_rate, workers=args.workers, job=job)
    except (KeyboardInterrupt, Cancelled):
        print(f"interrupted; nothing was written to {args.out}", file=sys.stderr)
        return 130
    print(summary.describe())
    return 0
