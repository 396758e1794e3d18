"""Acoustic indices (ACI, ADI, AEI, BI, NDSI, Ht, Hf, biophony / anthropophony energies and our
composition shares) of recordings, computed with scikit-maad, window by window:

  indices --recordings TABLE_OR_FOLDER --out indices.csv [--window-s 60] [--summary mean|median] [--json]

TABLE_OR_FOLDER: a pair table (the demo world's pairs.csv), SoundingEarth's metadata.csv, a campaign
folder, or a folder of audio files. Writes OUT.csv (a row per recording), OUT_windows.csv (a row per
window) and OUT.json (scikit-maad's parameters, skipped files and why). Undefined values are empty
cells. Needs the engine extra (scikit-maad); torch is not used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recordings", type=Path, required=True, metavar="TABLE_OR_FOLDER",
                        help="pair table, SoundingEarth metadata.csv, campaign folder or folder of audio files")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write (OUT_windows.csv and OUT.json "
                        "are written beside it)")
    parser.add_argument("--window-s", type=float, default=60.0,
                        help="window length in seconds (default 60; 0: each recording whole)")
    parser.add_argument("--summary", choices=("mean", "median"), default="mean",
                        help="how a recording's windows are summarised (default mean)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from engine.ecology.indices import IndexParameters, maad_version
    from engine.ecology.table import analyse_recordings, recordings_to_analyse, write_indices_table
    from engine.errors import ConfigError
    from engine.progress import TqdmJob

    if args.window_s < 0 or args.window_s != args.window_s:
        raise ConfigError("--window-s", f"{args.window_s} is negative", "give seconds, or 0 for whole recordings")
    if args.out.suffix.lower() != ".csv":
        raise ConfigError("--out", f"{args.out} is not a .csv file name", "name the table e.g. indices.csv")
    library = f"scikit-maad {maad_version()}"
    items, source, skipped_rows = recordings_to_analyse(args.recordings)
    params = IndexParameters()
    with TqdmJob("indices", unit="file") as job:
        rows = analyse_recordings(items, params, args.window_s or None, job)
    meta = write_indices_table(args.out, rows, params, args.window_s or None, args.summary,
                               f"{source}: {args.recordings.resolve()}", library)
    for line in skipped_rows[:10]:
        print(f"skipped while reading: {line}", file=sys.stderr)
    for entry in meta["skipped"][:10]:
        print(f"skipped: {entry['path']}: {entry['reason']}", file=sys.stderr)
    if args.json:
        print(json.dumps({"out": str(args.out), "recordings": meta["recordings"], "computed": meta["computed"],
                          "skipped": meta["skipped"], "library": library, "parameters": meta["parameters"],
                          "window_s": meta["window_s"], "summary": meta["summary"]}))
    else:
        print(f"{args.out}: indices of {meta['computed']} of {meta['recordings']} recordings ({library}, "
              f"windows of {args.window_s or 'whole'} s, {args.summary})")
    return 0
