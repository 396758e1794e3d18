"""Building an atlas: tiling and embedding GeoTIFFs and embedding recordings (re-embedding with a new
bundle is in :mod:`engine.atlas.reembed`). torch-free (onnxruntime through the bundle), resumable,
bounded in memory.

Work is done in parts (``part_tiles`` grid tiles, or 16 recordings); each finished part is appended
and committed, so a cancelled, crashed or failed build keeps everything up to its last part and the
same call continues from there. An input that fails (unreadable GeoTIFF, bad table) is recorded with
its error and the build goes on with the other inputs; the first error is raised at the end.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.atlas.imagery import (
    DEFAULT_TILE_SIZE_M,
    ImagerySource,
    OccupiedCells,
    TileGrid,
    gdal_env,
    thumbnail_jpeg,
)
from engine.atlas.writer import AtlasWriter, now
from engine.audio import probe_audio
from engine.bundle.format import Bundle, load_bundle
from engine.data.records import PairRecord
from engine.data.source import RecordingScan, scan_recordings
from engine.errors import AtlasError, AudioFileError, ConfigError, DiskFullError, UserInputError
from engine.inference.encoders import BundleEncoders
from engine.inference.images import prepare_image
from engine.progress import Job

log = logging.getLogger(__name__)

DEFAULT_THUMBNAIL_PX = 128
DEFAULT_PART_TILES = 256
DEFAULT_MIN_VALID_FRACTION = 0.5
RECORDING_PART = 16
OVERVIEW_PNG_LEVEL = 1
_KEEP_MESSAGES = 20  # skipped-row messages kept in atlas.json per table


class AtlasBuildError(AtlasError):
    """One or more inputs failed; what was built (from them and the others) is kept. ``report`` has all."""

    def __init__(self, report: BuildReport) -> None:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more failed input(s))" if len(report.errors) > 1 else ""
        super().__init__(None, first + more)
        self.report = report


class BuildStopped(AtlasError):
    """A fault that stops the whole build (a full disk, a lost cluster), not one input; the finished parts
    are kept and the same call continues."""


@dataclass
class BuildReport:
    """What a build did. ``errors`` are failed inputs (one line each). ``skipped`` has one line per
    unusable row or file, except that a table's rows skipped while reading it are represented by a few
    examples per reason (:class:`engine.data.records.SkipReport`); ``skipped_count`` counts them all and
    ``summaries`` holds each table's summary (e.g. "12 rows: 10 usable, 1 bad coordinates, 1 missing
    audio")."""

    atlas: Path
    tiles_added: int = 0
    recordings_added: int = 0
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped_count: int = 0
    summaries: list[str] = field(default_factory=list)

    def skip(self, message: str, count: int = 1) -> None:
        """Record ``count`` skipped items described by ``message``."""
        self.skipped.append(message)
        self.skipped_count += count

    def describe(self) -> str:
        text = f"{self.atlas}: +{self.tiles_added} tiles, +{self.recordings_added} recordings"
        if self.skipped_count:
            text += f"; {self.skipped_count} skipped"
        if self.errors:
            text += f"; {len(self.errors)} input(s) failed"
        return text


class _Progress:
    """Forwards progress to a Job at most every 0.1 s (and always at the end)."""

    def __init__(self, job: Job, total: int, done: int = 0) -> None:
        self.job, self.total, self.done = job, total, done
        self._last = 0.0

    def advance(self, n: int, message: str = "") -> None:
        self.done += n
        t = time.monotonic()
        if t - self._last > 0.1 or self.done >= self.total:
            self._last = t
            self.job.report(self.done, self.total, message)


def _as_bundle(bundle: Bundle | str | Path) -> Bundle:
    return bundle if isinstance(bundle, Bundle) else load_bundle(bundle)


def _fingerprint(path: Path) -> dict[str, int]:
    from engine.atlas.imagery import imagery_fingerprint

    return imagery_fingerprint(path)


def _model_input(rgb: np.ndarray, size: int) -> np.ndarray:
    return rgb if rgb.shape[0] == size else prepare_image(rgb, size)


# ----------------------------------------------------------------------------------- imagery

def _open_source(writer: AtlasWriter, path: Path, assume_crs: str | None, tile_size_m: float | None,
                 tile_px: int | None, explicit: tuple[float | None, int | None] = (None, None)
                 ) -> tuple[dict[str, Any], TileGrid] | None:
    """Find or add the source entry of ``path`` and its grid; None when it is already complete. The file is
    closed again: it is opened when its turn comes (an atlas of thousands of GeoTIFFs would otherwise hold
    them all open, past the usual limit of 1,024 open files)."""
    m = writer.manifest
    resolved = str(path.resolve())
    entry = writer.source_by_path(resolved)
    if entry is not None:
        if not path.is_file():
            raise AtlasError(path, "imagery file of this atlas is missing", "put it back, or build a new atlas")
        if _fingerprint(path) != {"size": entry["size"], "mtime_ns": entry["mtime_ns"]}:
            raise AtlasError(path, "changed since it was added to this atlas", "restore it, or build a new atlas")
        if entry["status"] == "complete":
            log.info("%s is already in the atlas", path)
            return None
        asked_m, asked_px = explicit
        if (asked_px is not None and [asked_px, asked_px] != entry["tile_px"]) or \
                (asked_m is not None and asked_m != entry["tile_size_m"]):
            raise ConfigError("--tile-size-m/--tile-px", f"{path} was started with tiles of "
                              f"{entry['tile_size_m'] or entry['tile_px']}", "resume with the same tile size")
        grid = TileGrid(entry["tile_px"][0], entry["tile_px"][1], entry["cols"], entry["rows"], *entry["ground_m"])
        return entry, grid
    with ImagerySource(path, assume_crs=assume_crs) as src:
        grid = src.grid(tile_size_m=None if tile_px else tile_size_m, tile_px=tile_px)
        entry = _new_entry(m, path, resolved, src, grid, assume_crs, tile_size_m, tile_px)
    # Committed with the source's overview or first part: a crash before leaves nothing of it to resume.
    return writer.add_source(entry), grid


def _new_entry(m: dict[str, Any], path: Path, resolved: str, src: ImagerySource, grid: TileGrid,
               assume_crs: str | None, tile_size_m: float | None, tile_px: int | None) -> dict[str, Any]:
    return {"index": len(m["sources"]), "path": resolved, **_fingerprint(path), "crs": src.crs.to_string(),
             "assume_crs": assume_crs if src.ds.crs is None else None, "width": src.width, "height": src.height,
             "tile_size_m": None if tile_px else tile_size_m, "tile_px": [grid.tile_w, grid.tile_h],
             "ground_m": [grid.ground_w_m, grid.ground_h_m], "cols": grid.cols, "rows": grid.rows,
             "part_tiles": m["tiling"]["part_tiles"], "parts_done": 0, "tiles": 0, "status": "building",
             "error": None, "stretch": src.stretch, "overview": None, "added_at": now()}


def _make_overview(writer: AtlasWriter, src: ImagerySource, entry: dict[str, Any]) -> None:
    """Write the source's Web Mercator overview. A failure here is only logged: the tiles that can be
    read are still worth building (the read error, if real, stops the source where it occurs)."""
    from PIL import Image

    try:
        rgba, bounds = src.overview()
    except UserInputError as err:
        log.warning("no overview for %s: %s", src.path, err)
        return
    name = f"overviews/source-{entry['index']}.png"
    (writer.root / "overviews").mkdir(exist_ok=True)
    # zlib level 1: 3.5x faster than Pillow's default 6 on aerial photos, for files 15% larger (a build from
    # thousands of small GeoTIFFs spent a third of its time compressing overviews)
    Image.fromarray(rgba, "RGBA").save(writer.root / name, compress_level=OVERVIEW_PNG_LEVEL)
    # Committed with the source's first part (a crash before then makes it again): with thousands of small
    # GeoTIFFs every manifest write counts (each one rewrites every source's entry).
    entry["overview"] = {"file": name, "bounds_3857": list(bounds)}


@dataclass
class TilePart:
    """One part of a source's grid, tiled and embedded (what a worker sends back to the one writer).
    ``examined`` counts the grid tiles looked at, ``cols``/``rows`` the ones kept."""

    part: int
    examined: int
    cols: list[int]
    rows: list[int]
    thumbs: list[bytes]
    embeddings: np.ndarray | None
    lon: np.ndarray | None = None
    lat: np.ndarray | None = None
    footprints: np.ndarray | None = None


def embed_tile_part(src: ImagerySource, grid: TileGrid, part: int, part_tiles: int, tiling: dict[str, Any],
                    encoders: BundleEncoders, check: Any = None, occupied: OccupiedCells | None = None) -> TilePart:
    """Read, thumbnail and embed part ``part`` of a source's grid (the same bytes wherever it runs).
    ``occupied`` skips cells without any valid pixel (the same tiles the valid-fraction test drops)."""
    size, thumb_px = encoders.image_size, int(tiling["thumbnail_px"])
    read_size = max(size, thumb_px)
    images, thumbs, cols, rows = [], [], [], []
    start, stop = part * part_tiles, min((part + 1) * part_tiles, grid.count)
    for k in range(start, stop):
        if check is not None:
            check()
        col, row = grid.position(k)
        if occupied is not None and not occupied(col, row):
            continue
        rgb, valid = src.read_tile(grid, col, row, read_size)
        if valid < tiling["min_valid_fraction"]:
            continue
        images.append(_model_input(rgb, size))
        thumbs.append(thumbnail_jpeg(rgb, thumb_px))
        cols.append(col)
        rows.append(row)
    result = TilePart(part, stop - start, cols, rows, thumbs, None)
    if images:
        result.embeddings = encoders.embed_images(np.stack(images))
        result.lon, result.lat, result.footprints = src.footprints(grid, np.array(cols), np.array(rows))
    return result


def commit_tile_part(writer: AtlasWriter, entry: dict[str, Any], result: TilePart, report: BuildReport) -> None:
    """Append a finished part and commit it (parts arrive in order: ``parts_done`` is the next one)."""
    if result.part != int(entry["parts_done"]):
        raise AtlasError(writer.root, f"part {result.part} arrived while part {entry['parts_done']} was due",
                         "run the same build again")
    with disk_full_guard(writer.root):
        if result.embeddings is not None:
            writer.append_tiles(result.lon, result.lat, result.footprints, entry["index"],
                                np.stack([result.cols, result.rows], axis=1), result.thumbs, result.embeddings)
        entry["parts_done"] = result.part + 1
        entry["tiles"] += len(result.cols)
        report.tiles_added += len(result.cols)
        if entry["parts_done"] >= math.ceil(entry["cols"] * entry["rows"] / int(entry["part_tiles"])):
            entry["status"] = "complete"  # with the last part: one manifest write less per source
        writer.commit()


class disk_full_guard:  # noqa: N801 - used like a function: ``with disk_full_guard(root):``
    """Turns "no space left on device" while committing a part into the one-line DiskFullError; what was
    committed before stays (the next build cuts off the uncommitted tail)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, err: BaseException | None, tb: Any) -> bool:
        from engine.files import disk_full_error, is_disk_full

        if isinstance(err, OSError) and is_disk_full(err):
            raise disk_full_error(self.root / "atlas.json", None) from err
        return False


def _build_source(writer: AtlasWriter, encoders: BundleEncoders, src: ImagerySource, grid: TileGrid,
                  entry: dict[str, Any], progress: _Progress, report: BuildReport, runner: Any = None) -> None:
    tiling = writer.manifest["tiling"]
    if entry["overview"] is None:
        _make_overview(writer, src, entry)
    per_part = int(entry["part_tiles"])
    parts = range(int(entry["parts_done"]), math.ceil(grid.count / per_part))
    name = Path(entry["path"]).name
    if runner is not None:  # the parts are computed elsewhere (engine.atlas.distributed) and arrive in order
        results = runner.tile_parts(entry, tiling, list(parts))
    else:
        # Cells without a single valid pixel are skipped from the mask, a strip at a time (exactly those the
        # valid-fraction test would drop, unless it accepts empty tiles).
        occupied = OccupiedCells(src, grid) if src.has_mask and tiling["min_valid_fraction"] > 0 else None

        def tick() -> None:  # here, progress moves tile by tile
            progress.job.check()
            progress.advance(1, name)

        results = (embed_tile_part(src, grid, part, per_part, tiling, encoders, tick, occupied) for part in parts)
    for result in results:
        progress.job.check()
        commit_tile_part(writer, entry, result, report)
        if runner is not None:
            progress.advance(result.examined, name)
    if entry["status"] != "complete":  # no parts (or none left): say so
        entry["status"] = "complete"
        writer.commit()


# ----------------------------------------------------------------------------------- recordings

def _recording_meta(record: PairRecord, table_index: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    # The dataset's own id (a pair table's id, SoundingEarth's key) and absolute paths; a recording
    # without a title shows its id. ``extra``: a campaign recording's site and times.
    return {"id": record.key, "lon": record.lon, "lat": record.lat, "path": str(record.audio.resolve()),
            "title": record.title or record.key, "duration": round(probe_audio(record.audio).duration, 3),
            "table": table_index, **(extra or {})}


def embed_recording_part(records: Sequence[PairRecord], table_index: int, encoders: BundleEncoders,
                         check: Any = None, extras: Sequence[Any] | None = None
                         ) -> tuple[list[dict[str, Any]], np.ndarray, list[str]]:
    """Embed a part of a table's recordings: (their metadata, (k, D) embeddings, skipped messages).
    ``extras``: a campaign's sites and times, aligned with ``records``."""
    meta, embeddings, skipped = [], [], []
    for i, record in enumerate(records):
        if check is not None:
            check()
        try:
            embedding = encoders.embed_audio_file(record.audio)
            if not np.isfinite(embedding).all():  # never stored: a NaN row would match nothing, silently
                raise AudioFileError(record.audio, "its embedding is not finite (NaN or infinite values)",
                                     "check that it is valid audio; re-export it as 16- or 24-bit PCM")
            embeddings.append(embedding)
            meta.append(_recording_meta(record, table_index, extras[i] if extras else None))
        except UserInputError as err:
            skipped.append(str(err))
    return meta, np.array(embeddings, np.float32).reshape(len(meta), encoders.embedding_dim), skipped


def _build_table(writer: AtlasWriter, encoders: BundleEncoders, scan: RecordingScan, entry: dict[str, Any],
                 progress: _Progress, report: BuildReport, runner: Any = None) -> None:
    records = scan.records
    starts = list(range(int(entry["rows_done"]), len(records), RECORDING_PART))
    extras = getattr(scan, "extras", None)  # a campaign's sites and times, aligned with the records
    if runner is not None:
        results = runner.recording_parts(records, entry["index"], starts, extras)
    else:
        results = (embed_recording_part(records[start:start + RECORDING_PART], entry["index"], encoders,
                                        progress.job.check, extras[start:start + RECORDING_PART] if extras else None)
                   for start in starts)
    for start, (meta, embeddings, skipped) in zip(starts, results, strict=True):
        progress.job.check()
        for message in skipped:
            report.skip(message)
            entry["skipped"] += 1
            if len(entry["skipped_examples"]) < _KEEP_MESSAGES:
                entry["skipped_examples"].append(message)
            log.warning("skipped: %s", message)
        with disk_full_guard(writer.root):
            writer.append_recordings(meta, embeddings)
            entry["rows_done"] = min(start + RECORDING_PART, len(records))
            entry["added"] += len(meta)
            report.recordings_added += len(meta)
            writer.commit()
        progress.advance(min(RECORDING_PART, len(records) - start), "recordings")
    entry["status"] = "complete"
    writer.commit()


def _open_table(writer: AtlasWriter, path: Path, report: BuildReport) -> tuple[RecordingScan, dict[str, Any]] | None:
    """Scan a recordings table through the data layer; find or add its entry. None when already complete."""
    m = writer.manifest
    resolved = str(path.resolve())
    from engine.atlas.campaign_input import is_campaign_folder, scan_campaign_recordings

    campaign = is_campaign_folder(path)
    scan = scan_campaign_recordings(path) if campaign else scan_recordings(path)
    stamp_file = scan.table if campaign else path  # a campaign changes when its recordings.csv does
    entry = next((t for t in m["recording_tables"] if t["path"] == resolved), None)
    if entry is not None:
        if _fingerprint(stamp_file) != {"size": entry["size"], "mtime_ns": entry["mtime_ns"]}:
            raise AtlasError(path, "changed since it was added to this atlas", "restore it, or build a new atlas")
        if entry["status"] == "complete":
            return None
        return scan, entry
    skipped = scan.report
    examples = [message for reason in skipped.examples for message in skipped.examples[reason]]
    summary = f"{path}: {skipped.describe()}"
    for message in examples:
        report.skip(message, count=0)
    report.skipped_count += skipped.skipped
    report.summaries.append(summary)
    entry = {"index": len(m["recording_tables"]), "path": resolved, **_fingerprint(stamp_file), "kind": scan.kind,
             "rows_total": len(scan.records), "rows_done": 0, "added": 0, "skipped": skipped.skipped,
             "skipped_examples": examples[:_KEEP_MESSAGES], "summary": skipped.describe(), "status": "building",
             "added_at": now()}
    m["recording_tables"].append(entry)
    writer.commit()
    return scan, entry


# ----------------------------------------------------------------------------------- public API

def _check_build_numbers(tile_size_m: float | None, thumbnail_px: int, min_valid_fraction: float, part_tiles: int,
                         threads: int | None) -> None:
    """One line for a number no build can use (NaN and infinity included), before anything is written."""
    if tile_size_m is not None and not (math.isfinite(tile_size_m) and tile_size_m > 0):
        raise ConfigError("--tile-size-m", f"{tile_size_m!r} is not a positive size", "give metres, e.g. 200")
    if not 8 <= int(thumbnail_px) <= 1024:
        raise ConfigError("--thumbnail-px", f"must be from 8 to 1024, got {thumbnail_px}", "use e.g. 128")
    if not 0.0 <= float(min_valid_fraction) <= 1.0:
        raise ConfigError("min_valid_fraction", f"must be from 0 to 1, got {min_valid_fraction}", None)
    if int(part_tiles) < 1:
        raise ConfigError("part_tiles", f"must be at least 1, got {part_tiles}", None)
    if threads is not None and int(threads) < 1:
        raise ConfigError("--threads", f"must be at least 1, got {threads}", "leave it out to use the cores")


def build_atlas(out: str | Path, bundle: Bundle | str | Path, imagery: Sequence[str | Path] = (),
                tile_size_m: float | None = None, tile_px: int | None = None,
                recordings: str | Path | Sequence[str | Path] | None = None, assume_crs: str | None = None,
                job: Job | None = None, *, thumbnail_px: int = DEFAULT_THUMBNAIL_PX,
                min_valid_fraction: float = DEFAULT_MIN_VALID_FRACTION, part_tiles: int = DEFAULT_PART_TILES,
                threads: int | None = None, create: bool = True, runner: Any = None,
                search_index: bool = True) -> BuildReport:
    """Create or extend an atlas (the same call again resumes an interrupted build).

    Args:
        out: the atlas folder (created if absent).
        bundle: the model bundle (or its folder); an existing atlas must have been built with it.
        imagery: GeoTIFFs (any CRS).
        tile_size_m: tile ground size; default: the atlas's, else the bundle's ``image.ground_size_m``,
            else :data:`DEFAULT_TILE_SIZE_M`.
        tile_px: tile size in pixels instead of metres.
        recordings: pair table(s), SoundingEarth metadata.csv, or campaign folders (``campaign scan``:
            each recording keeps its site and UTC/local start time, see :mod:`engine.atlas.times`).
        assume_crs: CRS for rasters that have none (e.g. ``EPSG:32618``).
        job: progress and cancel (:class:`engine.progress.Job`).
        thumbnail_px, min_valid_fraction, part_tiles: fixed when the atlas is created.
        threads: onnxruntime threads.
        create: False to require an existing atlas.
        search_index: keep the ANN index and compact heat-map codes of a large atlas up to date
            (:func:`engine.atlas.ann.update_search_index`; nothing below its threshold).
        runner: computes the parts elsewhere (a :class:`engine.atlas.distributed.DaskRunner`); this
            process stays the one writer and commits them in order.

    Returns:
        A :class:`BuildReport`.

    Raises:
        AtlasBuildError: some inputs failed (the rest, and their finished parts, are kept);
        AtlasError/BundleError: the atlas or bundle cannot be used at all; Cancelled: the job was cancelled
        (finished parts are kept).
    """
    if tile_size_m is not None and tile_px is not None:
        raise ConfigError("--tile-size-m/--tile-px", "both given", "give one of them")
    _check_build_numbers(tile_size_m, thumbnail_px, min_valid_fraction, part_tiles, threads)
    bundle = _as_bundle(bundle)
    job = job or Job()
    out = Path(out)
    tables = [recordings] if isinstance(recordings, (str, Path)) else list(recordings or [])
    imagery = [imagery] if isinstance(imagery, (str, Path)) else list(imagery)
    report = BuildReport(atlas=out)
    default_size = bundle.ground_size_m or DEFAULT_TILE_SIZE_M
    tiling = {"tile_size_m": None if tile_px else (tile_size_m or default_size), "tile_px": tile_px,
              "thumbnail_px": int(thumbnail_px), "min_valid_fraction": float(min_valid_fraction),
              "part_tiles": int(part_tiles)}
    encoders = BundleEncoders(bundle, threads=threads)
    if tables and (bundle.manifest.get("trained_on") or {}).get("audio_source") == "spectrogram":
        # Recordings are embedded through the front-end; this model learnt from the archive's own log-mels.
        log.warning("bundle %s was trained on SoundingEarth's spectrogram JPEGs; recordings embedded through "
                    "the front-end may not match its training (train with --audio-source raw for atlases and "
                    "the app)", bundle.short_id)
    with gdal_env(), AtlasWriter(out, bundle, tiling, create=create) as writer:
        writer.check_bundle()
        explicit = (tile_size_m, tile_px)  # a resumed source must match these only when they were given
        if tile_size_m is None and tile_px is None:
            tile_size_m, tile_px = writer.manifest["tiling"]["tile_size_m"], writer.manifest["tiling"]["tile_px"]
        work: list[tuple[str, Any]] = []
        for path in imagery:
            try:
                opened = _open_source(writer, Path(path), assume_crs, tile_size_m, tile_px, explicit)
            except UserInputError as err:
                report.errors.append(str(err))
                continue
            if opened is not None:
                work.append(("imagery", opened))
        for path in tables:
            try:
                opened_table = _open_table(writer, Path(path), report)
            except UserInputError as err:
                report.errors.append(str(err))
                continue
            if opened_table is not None:
                work.append(("table", opened_table))
        total = sum(item[1].count for kind, item in work if kind == "imagery") + \
            sum(len(item[0].records) for kind, item in work if kind == "table")
        done = sum(min(item[0]["parts_done"] * item[0]["part_tiles"], item[1].count)
                   for kind, item in work if kind == "imagery") + \
            sum(item[1]["rows_done"] for kind, item in work if kind == "table")
        progress = _Progress(job, total, done)
        job.report(done, total, "starting")
        for kind, item in work:
            if kind == "imagery":
                entry, grid = item
                try:
                    with ImagerySource(Path(entry["path"]), assume_crs=entry.get("assume_crs"),
                                       stretch=entry.get("stretch")) as src:
                        _build_source(writer, encoders, src, grid, entry, progress, report, runner)
                except (BuildStopped, DiskFullError):  # not the input's fault: stop; the same build resumes
                    raise
                except UserInputError as err:
                    entry["status"], entry["error"] = "failed", str(err)
                    writer.commit()
                    report.errors.append(str(err))
            else:
                table, entry = item
                _build_table(writer, encoders, table, entry, progress, report, runner)
    log.info("%s", report.describe())
    from engine.atlas.tile_index import update_tile_index

    update_tile_index(out)  # where the tiles are, for the map and point lookups (a no-op when current)
    from engine.atlas.overview_mosaic import update_overview_mosaic

    update_overview_mosaic(out)  # one picture of all the imagery, for the map zoomed out (2+ sources)
    from engine.atlas.imagery_pyramid import update_imagery_pyramid

    update_imagery_pyramid(out)  # the zooms between a large source's overview and its tiles' own images
    if search_index and (report.tiles_added or not report.errors):
        from engine.atlas.ann import update_search_index

        update_search_index(out)
    if report.errors:
        raise AtlasBuildError(report)
    return report


def add_imagery(atlas_path: str | Path, bundle: Bundle | str | Path, geotiff: str | Path, job: Job | None = None,
                assume_crs: str | None = None, tile_size_m: float | None = None,
                tile_px: int | None = None) -> BuildReport:
    """Tile and embed one more GeoTIFF into an existing atlas (its tile size unless one is given)."""
    return build_atlas(atlas_path, bundle, imagery=[geotiff], tile_size_m=tile_size_m, tile_px=tile_px,
                       assume_crs=assume_crs, job=job, create=False)


def add_recordings(atlas_path: str | Path, bundle: Bundle | str | Path, table: str | Path,
                   job: Job | None = None) -> BuildReport:
    """Embed the recordings of a pair table (or SoundingEarth metadata.csv) into an existing atlas."""
    return build_atlas(atlas_path, bundle, recordings=[table], job=job, create=False)
