"""Build and query atlases: tiles of GeoTIFF imagery and recordings, embedded with a model bundle.

  atlas build   --bundle B --out ATLAS [--imagery FILE ...] [--tile-size-m M | --tile-px P]
                [--recordings TABLE|CAMPAIGN ...] [--assume-crs EPSG:XXXX]     (run it again to resume)
                [--scheduler tcp://HOST:8786 | --workers N]           (on a Dask cluster, engine.atlas.distributed)
  atlas query   --atlas A (--audio FILE | --lonlat=LON,LAT | --tile ID) [--top-k K] [--json [--all-scores]]
                [--hours 4-8] [--dates 2019-05-01..2019-05-31]        (recordings of those local times only)
  atlas reembed --atlas A --bundle B                                  (after training a new bundle)
  atlas info    --atlas A
  atlas indices --atlas A [--window-s 60]                             (acoustic indices, scikit-maad)
  atlas export  --atlas A --layer LAYER --format cog|gpkg|csv|raven|png --out FILE   (see engine.commands.atlas_export)

Torch-free: everything runs on onnxruntime through the bundle. ``build`` with recordings also stores their
acoustic indices when scikit-maad (the engine extra) is installed (``--no-indices`` to skip).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.commands import parse_lonlat


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="atlas_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="create an atlas or add to it (resumes an interrupted build)")
    build.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    build.add_argument("--out", type=Path, required=True, help="atlas folder (created, or extended)")
    build.add_argument("--imagery", type=Path, nargs="+", default=[], metavar="FILE", help="GeoTIFFs, any CRS")
    size = build.add_mutually_exclusive_group()
    size.add_argument("--tile-size-m", type=float, help="tile ground size in metres (default: the bundle's "
                      "training ground size, else 200)")
    size.add_argument("--tile-px", type=int, help="tile size in pixels instead")
    build.add_argument("--recordings", type=Path, nargs="+", default=[], metavar="TABLE",
                       help="pair table CSV(s), SoundingEarth metadata.csv, or campaign folders from 'campaign scan' "
                       "(their recordings keep site and time)")
    build.add_argument("--assume-crs", help="CRS for imagery that has none, e.g. EPSG:32618")
    build.add_argument("--threads", type=int, help="onnxruntime threads (default: the cores, at most 8)")
    build.add_argument("--thumbnail-px", type=int, default=128, help="thumbnail size of a new atlas (default 128)")
    build.add_argument("--no-indices", action="store_true", help="do not compute the recordings' acoustic indices")
    cluster = build.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="ADDRESS", help="run the tiling and embedding on the workers of this "
                         "Dask cluster (e.g. tcp://HOST:8786); they need the same file paths as this machine")
    cluster.add_argument("--workers", type=int, metavar="N", help="run it on N local Dask worker processes")
    build.add_argument("--no-ann", action="store_true", help="do not build or update the approximate-nearest-"
                       "neighbour index of a large atlas")

    query = sub.add_parser("query", help="a place's soundscape, or where a sound could come from")
    query.add_argument("--atlas", type=Path, required=True)
    what = query.add_mutually_exclusive_group(required=True)
    what.add_argument("--audio", type=Path, help="find the tiles that sound like this file")
    what.add_argument("--lonlat", help="the tile at LON,LAT and its recordings (write --lonlat=-77.7,24.5)")
    what.add_argument("--tile", type=int, help="tile id and its recordings")
    query.add_argument("--top-k", type=_positive_int, default=10, help="how many matches (default 10)")
    query.add_argument("--bundle", type=Path, help="bundle for --audio (default: the one the atlas was built with)")
    query.add_argument("--json", action="store_true", help="JSON output (one object on one line)")
    query.add_argument("--all-scores", action="store_true",
                       help="with --audio --json: also every tile's score (\"scores\", in tile id order)")
    query.add_argument("--hours", help="only recordings that started in this local hour range, e.g. 4-8 "
                       "(04:00 to 08:00) or 21-4 (across midnight)")
    query.add_argument("--dates", help="only recordings of these local dates, e.g. 2019-05-01..2019-05-31 "
                       "(inclusive) or one date")

    reembed = sub.add_parser("reembed", help="embed an atlas again with another bundle")
    reembed.add_argument("--atlas", type=Path, required=True)
    reembed.add_argument("--bundle", type=Path, required=True)
    reembed.add_argument("--threads", type=int)

    info = sub.add_parser("info", help="describe an atlas")
    info.add_argument("--atlas", type=Path, required=True)
    info.add_argument("--json", action="store_true")

    indices = sub.add_parser("indices", help="compute and store the recordings' acoustic indices (scikit-maad)")
    indices.add_argument("--atlas", type=Path, required=True)
    indices.add_argument("--window-s", type=float, default=60.0, help="window length in seconds (default 60)")
    indices.add_argument("--summary", choices=("mean", "median"), default="mean")

    from engine.commands.atlas_export import add_export_arguments

    add_export_arguments(sub.add_parser("export", help="export a map layer, matches or indices (COG, GeoPackage, "
                                        "CSV, Raven selection table, PNG)"))


def _positive_int(text: str) -> int:
    """An argparse type for a count of at least 1 (argparse turns the error into its one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    if args.atlas_command == "export":
        from engine.commands.atlas_export import run_export

        return run_export(args)
    return {"build": _build, "query": _query, "reembed": _reembed, "info": _info,
            "indices": _indices}[args.atlas_command](args)


def _finish(report, err) -> int:
    for line in report.summaries:
        print(f"recordings: {line}", file=sys.stderr)
    for line in report.skipped[:10]:
        print(f"skipped: {line}", file=sys.stderr)
    if report.skipped_count > min(10, len(report.skipped)):
        print(f"skipped: ... and {report.skipped_count - min(10, len(report.skipped))} more", file=sys.stderr)
    print(report.describe())
    if err is not None:
        for line in report.errors:
            print(f"error: {line}", file=sys.stderr)
        return 2
    return 0


def _build(args: argparse.Namespace) -> int:
    from engine.progress import Job
    from engine.stop_signals import stop_on_signals

    # One handler for the whole command, beneath each phase's own: a signal between the build and the
    # indices phase (or while the build finishes its derived files) stops the command too, never the
    # default action (killed, status -15).
    between = Job()
    with stop_on_signals(between, "the build"):
        return _build_phases(args, between)


def _build_phases(args: argparse.Namespace, between: Any) -> int:
    from engine.atlas import AtlasBuildError, build_atlas
    from engine.progress import TqdmJob
    from engine.stop_signals import stop_on_signals

    with TqdmJob("atlas", unit="item") as job, stop_on_signals(job, "the current part"):
        try:
            inputs = {"imagery": args.imagery, "tile_size_m": args.tile_size_m, "tile_px": args.tile_px,
                      "recordings": args.recordings, "assume_crs": args.assume_crs, "job": job,
                      "threads": args.threads, "thumbnail_px": args.thumbnail_px,
                      "search_index": not args.no_ann}
            if args.scheduler or args.workers:
                from engine.atlas.distributed import build_atlas_on_cluster

                report = build_atlas_on_cluster(args.out, args.bundle, scheduler=args.scheduler,
                                                workers=args.workers, **inputs)
            else:
                report = build_atlas(args.out, args.bundle, **inputs)
            err = None
        except AtlasBuildError as failure:
            report, err = failure.report, failure
    status = _finish(report, err)
    if job.cancelled or between.cancelled:  # asked to stop once the tiles were in: the indices next time
        print("stopped: run the same command again to finish", file=sys.stderr)
        return 130 if status == 0 else status
    if args.recordings and not args.no_indices and err is None:
        from engine.errors import ConfigError

        try:
            _store_indices(args.out, 60.0, "mean")
        except ConfigError as missing:  # scikit-maad absent: the atlas is complete without indices
            print(f"note: acoustic indices not stored: {missing}", file=sys.stderr)
    return status


def _store_indices(atlas: Path, window_s: float, summary: str) -> None:
    from engine.ecology.atlas_indices import add_atlas_indices
    from engine.progress import TqdmJob
    from engine.stop_signals import stop_on_signals

    # Resumable in parts like the build itself, so SIGTERM/Ctrl-C stop it after the current part too.
    with TqdmJob("indices", unit="file") as job, stop_on_signals(job, "the current part"):
        report = add_atlas_indices(atlas, window_s=window_s or None, summary=summary, job=job)
    for line in report.skipped[:10]:
        print(f"no indices: {line}", file=sys.stderr)
    print(report.describe())


def _indices(args: argparse.Namespace) -> int:
    _store_indices(args.atlas, args.window_s, args.summary)
    return 0


def _reembed(args: argparse.Namespace) -> int:
    from engine.atlas import reembed_atlas
    from engine.progress import TqdmJob
    from engine.stop_signals import stop_on_signals

    with TqdmJob("re-embed", unit="item") as job, stop_on_signals(job, "the current part"):
        report = reembed_atlas(args.atlas, args.bundle, job=job, threads=args.threads)
    return _finish(report, None)


def _matches(items) -> list[dict[str, Any]]:
    return [{"index": m.index, "id": m.id, "title": m.title, "path": m.path, "distance": _num(m.distance),
             "score": _num(m.score), "km": _num(m.km), "site": m.site, "start_local": m.start_local}
            for m in items]


def _when(row: dict[str, Any]) -> str:
    """A listed recording's site and local start, or "" for a recording without a time."""
    local = row.get("start_local")
    if not local:
        return ""
    return f"{row.get('site') or ''} {local[:16].replace('T', ' ')}{local[19:]}".strip()


def _num(x: float, digits: int = 6) -> float | None:
    return None if x != x or x in (float("inf"), float("-inf")) else float(f"{x:.{digits}g}")


def _query(args: argparse.Namespace) -> int:
    from engine.atlas import locate_tile, nearest_recordings, open_atlas, sound_query, tile_soundscape
    from engine.atlas.times import time_filter
    from engine.cli_output import json_line
    from engine.errors import AtlasError, ConfigError

    if args.all_scores and not (args.json and args.audio is not None):
        raise ConfigError("--all-scores", "lists every tile's score of a sound query in JSON",
                          "use it with --audio FILE --json")

    where = time_filter(args.hours, args.dates)  # a bad range stops here, before the atlas is read
    atlas = open_atlas(args.atlas)
    out: dict[str, Any] = {"atlas": str(atlas.path), "bundle_id": atlas.bundle_id}
    if where.active:
        out["where"] = {"hours": args.hours, "dates": args.dates, "describe": where.describe()}
    if args.audio is not None:
        from engine.bundle.format import load_bundle
        from engine.inference.encoders import BundleEncoders

        bundle_path = args.bundle or Path(atlas.manifest.get("bundle_path", ""))
        if not args.bundle and not (bundle_path / "manifest.json").is_file():
            raise AtlasError(args.atlas, f"the bundle it was built with is not at {bundle_path}",
                             "pass --bundle BUNDLE (the one the atlas was built with)")
        bundle = load_bundle(bundle_path)
        atlas = open_atlas(args.atlas, bundle)
        result = sound_query(atlas, BundleEncoders(bundle).embed_audio_file(args.audio), args.top_k)
        out["query"] = {"audio": str(args.audio)}
        out["top"] = [{"index": t.index, "id": t.id, "lon": t.lon, "lat": t.lat, "distance": _num(t.distance),
                       "score": _num(t.score), "source": atlas.sources[int(atlas.tiles.source[t.index])].path}
                      for t in result.top]
        if args.json:
            if args.all_scores:
                out["scores"] = [float(f"{s:.5g}") for s in result.scores]
            print(json_line(out))
        else:
            for t in out["top"]:
                print(f"tile {t['id']:>8}  {t['lon']:10.5f} {t['lat']:9.5f}  score {t['score']:.4f}")
        return 0
    if args.lonlat is not None:
        lon, lat = parse_lonlat(args.lonlat)
        tile = locate_tile(atlas, lon, lat)
        out["query"] = {"lonlat": [lon, lat]}
    else:
        tile = args.tile
        tile_soundscape(atlas, tile, 0)  # checks the id
        out["query"] = {"tile": tile}
    if tile is None:
        out["tile"], out["best"] = None, []
        out["nearest"] = _matches(nearest_recordings(atlas, lon, lat, args.top_k, where=where))
    else:
        best, nearest = tile_soundscape(atlas, tile, args.top_k, where=where)
        out["tile"] = {"id": int(atlas.tiles.ids[tile]), "lon": float(atlas.tiles.lon[tile]),
                       "lat": float(atlas.tiles.lat[tile]),
                       "footprint": [[float(a), float(b)] for a, b in atlas.tiles.footprints[tile]],
                       "source": atlas.sources[int(atlas.tiles.source[tile])].path}
        out["best"], out["nearest"] = _matches(best), _matches(nearest)
    if args.json:
        print(json_line(out))
    else:
        t = out["tile"]
        print("no tile here" if t is None else f"tile {t['id']} at {t['lon']:.5f}, {t['lat']:.5f} ({t['source']})")
        if where.active:
            print(f"recordings limited to {where.describe()}")
        for title, rows in (("best matches", out["best"]), ("nearest", out["nearest"])):
            print(f"{title}:")
            for r in rows:
                when = _when(r)
                print(f"  {r['id']:<24} score {r['score'] if r['score'] is not None else float('nan'):.4f}  "
                      f"{r['km']:9.2f} km  {r['title']}" + (f"  [{when}]" if when else ""))
    return 0


def _info(args: argparse.Namespace) -> int:
    from engine.atlas import open_atlas
    from engine.cli_output import json_line

    atlas = open_atlas(args.atlas)
    if args.json:
        m = atlas.manifest
        print(json_line({"atlas": str(atlas.path), "bundle_id": atlas.bundle_id, "tiles": len(atlas.tiles),
                          "recordings": len(atlas.recordings), "bounds": atlas.bounds, "sources": m["sources"],
                          "recording_tables": m["recording_tables"], "reembed": m.get("reembed"),
                          "indices": m.get("indices")}))
    else:
        print(atlas.describe())
        for s in atlas.sources:
            print(f"  [{s.index}] {s.path}: {s.tiles} tiles of {s.tile_px[0]}x{s.tile_px[1]} px, {s.status}"
                  + (f" ({s.error})" if s.error else ""))
    return 0
