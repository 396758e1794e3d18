"""Read a field campaign: folders of recorder files (AudioMoth, Song Meter, GUANO), a sites table and the
imagery, into a campaign folder (one row per file with site, position, UTC and local time) and a summary.

  campaign scan --recordings DIR [--sites SITES.csv] [--files-table FILES.csv] [--imagery TIF ...]
                [--timezone TZ] --out CAMPAIGN [--json]

Positions come from the file's GUANO Loc Position, else the sites table (matched by folder name, recorder
serial or file prefix), else the per-file table. Reads headers only. Torch-free.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    scan = sub.add_parser("scan", help="scan recorder folders into a campaign folder and print a summary")
    scan.add_argument("--recordings", type=Path, required=True, help="folder of recorder files (any nesting)")
    scan.add_argument("--sites", type=Path, help="sites table CSV: site, longitude, latitude [, recorder, start, "
                      "end, timezone]")
    scan.add_argument("--files-table", type=Path, help="per-file table CSV: path, longitude, latitude [, site, "
                      "timezone]")
    scan.add_argument("--imagery", type=Path, nargs="+", default=[], metavar="TIF", help="GeoTIFFs, any CRS")
    scan.add_argument("--timezone", help="the sites' time zone where the table gives none (e.g. Europe/Berlin, "
                      "+02:00); Song Meter names are in local time")
    scan.add_argument("--min-seconds", type=float, default=1.0, help="skip shorter files (default 1 s)")
    scan.add_argument("--out", type=Path, required=True, help="campaign folder to write (new, or a campaign "
                      "to rewrite)")
    scan.add_argument("--json", action="store_true", help="print the summary as JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from engine.campaign.report import describe_summary
    from engine.campaign.scan import ScanOptions, check_options, scan_to_folder
    from engine.progress import TqdmJob

    options = ScanOptions(recordings=args.recordings, sites_table=args.sites, files_table=args.files_table,
                          imagery=tuple(args.imagery), timezone=args.timezone, min_seconds=args.min_seconds)
    check_options(options)  # bad input: one line, before any progress bar
    with TqdmJob("scanning", unit="file", leave=False) as job:
        result = scan_to_folder(options, args.out, job)
    if args.json:
        print(json.dumps(result.summary, indent=2, ensure_ascii=False))
    else:
        print(describe_summary(result.summary, str(args.out)))
    if not result.campaign.recordings:
        print(f"error: {args.recordings}: no usable recordings (see {args.out}/skipped.csv)", file=sys.stderr)
        return 1
    return 0
