"""``soundscape-engine atlas export``: a map layer, matches or the indices out of an atlas, for QGIS, Raven
and reports.

  atlas export --atlas A --layer similarity --query-audio F --format cog|gpkg|csv|png --out FILE
  atlas export --atlas A --layer ACI|NDSI|biophony_share|... --format cog|gpkg|csv|png --out FILE
  atlas export --atlas A (--tile ID | --lonlat=LON,LAT) --format csv|raven --out FILE   (a tile's recordings)
  atlas export --atlas A --layer indices --format csv --out FILE                      (the stored indices)
  atlas export --atlas A --spectrogram AUDIO --format png --out FILE

Layers: ``similarity`` (the heat map of a sound query: each tile's score) or a predicted index or
composition share (``engine.ecology.maps``; the GeoPackage and CSV add its uncertainty). ``--crs``:
``source`` (the imagery's CRS; the default for cog) or ``EPSG:4326`` (the default for gpkg). Every file
is written atomically; undefined values are nodata / null / empty, never 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = ("cog", "gpkg", "csv", "raven", "png")


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--atlas", type=Path, required=True)
    parser.add_argument("--layer", help="similarity, an index (ACI, ADI, AEI, BI, NDSI, Ht, Hf, ...) or a "
                        "composition share, or 'indices' (the stored indices table, csv)")
    parser.add_argument("--query-audio", type=Path, help="the sound whose similarity map (or best tiles) to export")
    parser.add_argument("--tile", type=int, help="export this tile's recordings (csv, raven)")
    parser.add_argument("--lonlat", help="the tile at LON,LAT (write --lonlat=-77.7,24.5)")
    parser.add_argument("--spectrogram", type=Path, metavar="AUDIO", help="a spectrogram PNG of this recording")
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--crs", help="'source' (the imagery's CRS) or EPSG:4326 (default: source for cog, "
                        "EPSG:4326 for gpkg)")
    parser.add_argument("--source", type=int, help="imagery source index for a COG in its own CRS")
    parser.add_argument("--top-k", type=int, default=20, help="matches to export (default 20)")
    parser.add_argument("--k", type=int, default=None, help="recordings per tile for predicted indices (default 32)")
    parser.add_argument("--bundle", type=Path, help="bundle for --query-audio (default: the atlas's)")


def _query_scores(atlas: Any, args: argparse.Namespace) -> Any:
    from engine.atlas import open_atlas, sound_query
    from engine.bundle.format import load_bundle
    from engine.errors import AtlasError
    from engine.inference.encoders import BundleEncoders

    bundle_path = args.bundle or Path(atlas.manifest.get("bundle_path", ""))
    if not (bundle_path / "manifest.json").is_file():
        raise AtlasError(args.atlas, f"the bundle it was built with is not at {bundle_path}", "pass --bundle BUNDLE")
    bundle = load_bundle(bundle_path)
    atlas = open_atlas(args.atlas, bundle)
    return sound_query(atlas, BundleEncoders(bundle).embed_audio_file(args.query_audio), args.top_k)


def _layer(atlas: Any, args: argparse.Namespace) -> tuple[str, dict[str, np.ndarray]]:
    """(layer name, {column: (N,) values}) with the layer itself first."""
    from engine.errors import ConfigError

    name = args.layer or ("similarity" if args.query_audio else None)
    if name is None:
        raise ConfigError("--layer", "missing", "give --layer similarity (with --query-audio) or an index name")
    if name == "similarity":
        if args.query_audio is None:
            raise ConfigError("--layer similarity", "needs the sound", "give --query-audio FILE")
        result = _query_scores(atlas, args)
        return name, {"similarity": result.scores, "distance": result.distances}
    from engine.ecology.maps import DEFAULT_K, SoundscapePredictor

    predictor = SoundscapePredictor(atlas, k=args.k or DEFAULT_K)
    if name not in predictor.names:
        raise ConfigError("--layer", f"{name!r} is not a layer of this atlas",
                          "choose similarity or one of " + ", ".join(predictor.names))
    layer = predictor.layer(name)
    return name, {name: layer.values, f"{name}_uncertainty": layer.uncertainty}


def _tile_of(atlas: Any, args: argparse.Namespace) -> int | None:
    from engine.atlas import locate_tile
    from engine.commands import parse_lonlat
    from engine.errors import ConfigError

    if args.tile is not None:
        if not 0 <= args.tile < len(atlas.tiles):
            raise ConfigError("--tile", f"{args.tile} is not a tile of this atlas (0..{len(atlas.tiles) - 1})",
                              "give a tile id from 'atlas query'")
        return args.tile
    if args.lonlat is not None:
        lon, lat = parse_lonlat(args.lonlat)
        tile = locate_tile(atlas, lon, lat)
        if tile is None:
            raise ConfigError("--lonlat", f"{lon}, {lat} is on no tile of this atlas", "choose a place on the map")
        return tile
    return None


def _nyquist(matches: list[Any]) -> dict[str, float]:
    """Each matched recording's Nyquist frequency (the top of a whole-band selection); unknown if unreadable."""
    from engine.audio import probe_audio
    from engine.errors import UserInputError

    out = {}
    for m in matches:
        try:
            out[m.id] = probe_audio(m.path).sample_rate / 2
        except UserInputError:
            pass
    return out


def run_export(args: argparse.Namespace) -> int:
    from engine.atlas import open_atlas, tile_soundscape
    from engine.errors import ConfigError
    from engine.gis import tables

    if args.format == "png" and args.spectrogram is not None:
        from engine.gis.figures import spectrogram_png

        spectrogram_png(args.out, args.spectrogram)
        print(f"{args.out}: spectrogram of {args.spectrogram}")
        return 0
    atlas = open_atlas(args.atlas)
    tile = _tile_of(atlas, args)
    if args.format in ("csv", "raven") and tile is not None:
        best, _ = tile_soundscape(atlas, tile, args.top_k)
        durations = dict(zip(atlas.recordings.ids, (float(d) for d in atlas.recordings.durations), strict=True))
        if args.format == "raven":
            tables.write_raven(args.out, best, durations, _nyquist(best))
        else:
            tables.write_rows(args.out, tables.MATCH_COLUMNS, tables.recording_match_rows(best, durations))
        print(f"{args.out}: {len(best)} recordings of tile {tile}")
        return 0
    if args.format == "raven":
        raise ConfigError("--format raven", "lists recordings", "give the tile: --tile ID or --lonlat=LON,LAT")
    if args.format == "csv" and args.layer == "indices":
        return _indices_csv(atlas, args)
    if args.format == "csv" and args.query_audio is not None and args.layer in (None, "similarity"):
        result = _query_scores(atlas, args)
        tables.write_rows(args.out, ["rank", "tile", "lon", "lat", "score", "distance"],
                          [[r, t.id, t.lon, t.lat, t.score, t.distance] for r, t in enumerate(result.top, 1)])
        print(f"{args.out}: the {len(result.top)} best tiles for {args.query_audio}")
        return 0
    name, columns = _layer(atlas, args)
    values = columns[name]
    if args.format == "cog":
        from engine.gis.raster import layer_raster, write_cog

        crs = None if args.crs in (None, "source") else args.crs
        write_cog(args.out, layer_raster(atlas, values, crs=crs, source=args.source), name=name)
    elif args.format == "gpkg":
        from engine.gis.vector import write_tiles_gpkg

        write_tiles_gpkg(args.out, atlas, columns, crs=None if args.crs == "source" else (args.crs or "EPSG:4326"))
    elif args.format == "csv":
        t = atlas.tiles
        tables.write_rows(args.out, ["tile", "lon", "lat", *columns],
                          [[int(i), float(t.lon[i]), float(t.lat[i]), *(float(c[i]) for c in columns.values())]
                           for i in range(len(t))])
    else:
        from engine.gis.figures import map_png

        map_png(args.out, atlas, values, title=name)
    print(f"{args.out}: layer {name} of {len(atlas.tiles)} tiles ({int(np.isfinite(values).sum())} with a value)")
    return 0


def _indices_csv(atlas: Any, args: argparse.Namespace) -> int:
    from engine.errors import AtlasError
    from engine.gis import tables

    ind = atlas.indices
    if ind is None:
        raise AtlasError(args.atlas, "holds no acoustic indices (built before they existed, or without scikit-maad)",
                         "add them with 'soundscape-engine atlas indices --atlas ATLAS'")
    r = atlas.recordings
    rows = [[r.ids[i], r.titles[i], r.paths[i], float(r.lon[i]), float(r.lat[i]), float(ind.hour[i]),
             *(float(v) for v in ind.values[i])] for i in range(len(r))]
    tables.write_rows(args.out, ["id", "title", "path", "longitude", "latitude", "hour", *ind.names], rows)
    print(f"{args.out}: indices of {int(ind.computed.sum())} recordings ({ind.library})")
    return 0
