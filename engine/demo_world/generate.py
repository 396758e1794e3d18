"""``generate_world``: the whole demo world, from a seed, into a new folder.

Order of work: the plan (main process), the mosaic and land cover tile by tile (workers, into
memory maps), how audible each sound layer is everywhere and where the points go (main), then the
points' images and recordings (workers) while the main process writes the GeoTIFFs. Everything is
written into a hidden folder beside the target and renamed at the very end, so a cancelled or
crashed run never leaves a folder that looks complete.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.pair_table import DEMO_WORLD_FORMAT, TABLE_NAME, WORLD_FILE
from engine.demo_world import worker
from engine.demo_world.birds import world_species
from engine.demo_world.config import (
    CLASS_NAMES,
    CLASSES,
    CRS,
    LAYER_NAMES,
    ORIGIN_NORTH,
    ORIGIN_WEST,
    SAMPLE_RATE,
    SPLIT_PROPORTIONS,
    SPLITS,
    WorldSize,
    world_size,
)
from engine.demo_world.land_cover import LAYER_TO_CLASS, calibrate
from engine.demo_world.layout import plan_world
from engine.demo_world.mixing import GAIN_DB, audibility_maps, sample_maps
from engine.demo_world.points import block_splits, sample_points
from engine.demo_world.writing import TILE_PX, readme_text, write_geotiffs, write_json, write_table
from engine.errors import ConfigError
from engine.files import check_new_folder, write_whole_folder
from engine.progress import Job

log = logging.getLogger(__name__)
FORMAT = DEMO_WORLD_FORMAT  # what engine.data reads to tell a demo world
FORMAT_VERSION = 1
POINTS_PER_TASK = 20


@dataclass(frozen=True)
class WorldSummary:
    """What was generated, for the command line and the app."""

    folder: Path
    seed: int
    size: str
    recordings: int
    clip_seconds: float
    splits: dict[str, int]
    labels: dict[str, int]
    image_px: int
    pixel_m: float
    extent_m: float
    bytes_on_disk: int
    seconds: float
    workers: int
    lon_lat_bounds: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))

    def describe(self) -> str:
        """One paragraph for a person."""
        w, s, e, n = self.lon_lat_bounds
        labels = ", ".join(f"{name} {count}" for name, count in self.labels.items() if count)
        return (f"Synthetic demo world (seed {self.seed}, size {self.size}) written to {self.folder}: "
                f"{self.recordings} recordings of {self.clip_seconds:g} s paired with {self.image_px} px aerial "
                f"images at {self.pixel_m:g} m/px ({self.image_px * self.pixel_m:g} m), split "
                f"{self.splits.get('train', 0)}/{self.splits.get('val', 0)}/{self.splits.get('test', 0)} "
                f"train/val/test by spatial blocks; dominant classes: {labels}. The region covers "
                f"{self.extent_m / 1000:g} x {self.extent_m / 1000:g} km ({w:.3f} to {e:.3f} E, {s:.3f} to {n:.3f} N), "
                f"with a GeoTIFF mosaic and land-cover map. {self.bytes_on_disk / 2**20:.1f} MB, made in "
                f"{self.seconds:.1f} s with {self.workers} process{'es' if self.workers > 1 else ''}. "
                f"The table is pairs.csv; everything in it is synthetic.")


def generate_world(out: str | Path, seed: int = 0, size: str = "default", workers: int | None = None,
                   job: Job | None = None) -> WorldSummary:
    """Generate the demo world into the new folder ``out``.

    Args:
        out: folder to create (it may exist if it is empty).
        seed: any non-negative integer; the same seed and size give the same files.
        size: "tiny" (tests: seconds), "small" or "default" (the app's demo world).
        workers: processes (default: all cores; "tiny" runs in this process).
        job: progress and cancellation (``report``/``check``), e.g. a ``TqdmJob``.
    Returns:
        A :class:`WorldSummary`.
    Raises:
        ConfigError: unknown size, negative seed or fewer than one worker.
        DatasetError: ``out`` is a file or a non-empty folder, or cannot be created.
        Cancelled: ``job`` was cancelled; nothing is left behind.
    """
    spec, workers, out = check_request(out, seed, size, workers)
    job = job or Job()
    start = time.perf_counter()
    world = write_whole_folder(out, lambda folder: _generate(folder, int(seed), spec, workers, job), "demo world")
    size_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    wb = world["bounds_wgs84"]
    return WorldSummary(out, int(seed), spec.name, world["counts"]["recordings"], spec.clip_seconds,
                        {k: world["counts"][k] for k in SPLITS}, world["counts"]["labels"], spec.image_px,
                        spec.pixel_m, spec.extent_m, size_bytes, time.perf_counter() - start, workers,
                        (wb["west"], wb["south"], wb["east"], wb["north"]))


def check_request(out: str | Path, seed: int, size: str, workers: int | None) -> tuple[WorldSize, int, Path]:
    """Validate a request before any work: returns (size, workers, out folder).

    Raises:
        ConfigError, DatasetError: as :func:`generate_world`.
    """
    spec = world_size(size)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError("--seed", f"{seed!r} is not a non-negative integer", "use e.g. --seed 0")
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = 1 if spec.default_workers == 1 else max(1, cores)
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise ConfigError("--workers", f"{workers!r} is not a positive number of processes", "use e.g. --workers 2")
    out = Path(out).expanduser()
    check_new_folder(out, "demo world")
    return spec, int(workers), out


class _Progress:
    def __init__(self, job: Job, total: int) -> None:
        self.job, self.total, self.done = job, total, 0

    def advance(self, units: int, message: str) -> None:
        self.done += units
        self.job.report(self.done, self.total, message)
        self.job.check()


def _generate(folder: Path, seed: int, spec: WorldSize, workers: int, job: Job) -> dict[str, Any]:
    scratch = folder / "_scratch"
    for sub in ("images", "audio", "_scratch"):
        (folder / sub).mkdir()
    n_px = spec.mosaic_px
    strips = -(-n_px // TILE_PX)
    # Tiles, placing the points, GeoTIFF strips and overviews, the points, the table.
    progress = _Progress(job, strips * strips + 1 + 2 * strips + 2 + spec.recordings + 1)
    job.report(0, progress.total, "planning")
    job.check()
    layout = calibrate(plan_world(seed, spec))
    species = world_species(np.random.default_rng([seed, 0xB1D]))
    rgb_path, layer_path = scratch / "rgb.npy", scratch / "layers.npy"
    np.lib.format.open_memmap(rgb_path, mode="w+", dtype=np.uint8, shape=(n_px, n_px, 3)).flush()
    np.lib.format.open_memmap(layer_path, mode="w+", dtype=np.uint8, shape=(n_px, n_px)).flush()

    pool = (ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=worker.ignore_interrupts)
            if workers > 1 else None)
    try:
        tiles = [worker.TileTask(layout, spec.name, r, c, min(TILE_PX, n_px - r), min(TILE_PX, n_px - c),
                                 rgb_path, layer_path)
                 for r in range(0, n_px, TILE_PX) for c in range(0, n_px, TILE_PX)]
        for _ in _run(pool, worker.render_tile, tiles):
            progress.advance(1, "rendering the mosaic")

        layers = np.load(layer_path, mmap_mode="r")
        cell_px = max(1, int(round(8.0 / spec.pixel_m)))
        maps, cell_m = audibility_maps(layers, spec.pixel_m, cell_px)
        classes = LAYER_TO_CLASS[np.asarray(layers[cell_px // 2::cell_px, cell_px // 2::cell_px])]
        splits = block_splits(seed, spec)
        x, y = sample_points(seed, spec, classes, cell_px * spec.pixel_m, splits)
        audible = sample_maps(maps, cell_m, x, y).astype(np.float32)
        progress.advance(1, "placing recordings")

        tasks = [worker.PointTask(seed, spec.name, folder, rgb_path, layer_path, species,
                                  tuple((i, float(x[i]), float(y[i]), audible[i])
                                        for i in range(a, min(a + POINTS_PER_TASK, spec.recordings))))
                 for a in range(0, spec.recordings, POINTS_PER_TASK)]
        results: dict[int, worker.PointResult] = {}
        pending = [pool.submit(worker.make_points, t) for t in tasks] if pool else []

        def collect() -> None:  # while the main process writes GeoTIFFs, count finished points
            for fut in [f for f in pending if f.done()]:
                pending.remove(fut)
                for r in fut.result():
                    results[r.index] = r
                progress.advance(len(fut.result()), "images and recordings")

        rgb = np.load(rgb_path, mmap_mode="r")
        west, north = ORIGIN_WEST, ORIGIN_NORTH

        def land_class(r0: int, r1: int) -> np.ndarray:
            return LAYER_TO_CLASS[np.asarray(layers[r0:r1])]

        def step() -> None:
            collect()
            progress.advance(1, "writing GeoTIFFs")

        write_geotiffs(folder, rgb, land_class, west, north, spec.pixel_m, step)
        if pool:
            while pending:
                _wait_any(pending)
                collect()
        else:
            for task in tasks:
                for r in worker.make_points(task):
                    results[r.index] = r
                progress.advance(len(task.items), "images and recordings")
    except BaseException:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    if pool:
        pool.shutdown(wait=True)

    world = _describe_world(seed, spec, splits, x, y, results)
    write_table(folder / TABLE_NAME, world.pop("_rows"))
    write_json(folder / WORLD_FILE, world)
    (folder / "README.md").write_text(readme_text(world), encoding="utf-8")
    progress.advance(1, "done")
    return world


def _run(pool: ProcessPoolExecutor | None, fn: Any, tasks: list[Any]) -> Any:
    """Yield results as tasks finish (in this process when there is no pool)."""
    if pool is None:
        for task in tasks:
            yield fn(task)
        return
    pending = [pool.submit(fn, t) for t in tasks]
    while pending:
        _wait_any(pending)
        for fut in [f for f in pending if f.done()]:
            pending.remove(fut)
            yield fut.result()


def _wait_any(pending: list[Future]) -> None:
    from concurrent.futures import FIRST_COMPLETED, wait

    wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)


def _describe_world(seed: int, spec: WorldSize, splits: np.ndarray, x: np.ndarray, y: np.ndarray,
                    results: dict[int, worker.PointResult]) -> dict[str, Any]:
    """world.json's content, plus the table rows under ``_rows``."""
    from rasterio.warp import transform

    east, north = ORIGIN_WEST + x, ORIGIN_NORTH - y
    lon, lat = transform(CRS, "EPSG:4326", east.tolist(), north.tolist())
    corners_x = [ORIGIN_WEST, ORIGIN_WEST + spec.extent_m] * 2
    corners_y = [ORIGIN_NORTH] * 2 + [ORIGIN_NORTH - spec.extent_m] * 2
    clon, clat = transform(CRS, "EPSG:4326", corners_x, corners_y)
    block_i = np.clip((y // spec.block_m).astype(int), 0, splits.shape[0] - 1)
    block_j = np.clip((x // spec.block_m).astype(int), 0, splits.shape[1] - 1)
    split_of = splits[block_i, block_j]
    rows = []
    for i in range(spec.recordings):
        fr = results[i].fractions
        label = CLASS_NAMES[int(np.argmax(fr))]
        row = {"id": i, "longitude": f"{lon[i]:.7f}", "latitude": f"{lat[i]:.7f}", "image": worker.image_name(i),
               "audio": worker.audio_name(i), "split": SPLITS[split_of[i]], "label": label}
        row.update({f"lc_{name}": f"{fr[k]:.4f}" for k, name in enumerate(CLASS_NAMES)})
        row.update({"title": f"Synthetic recording {i} ({label})", "license": "synthetic data, free to use"})
        rows.append(row)
    labels = {name: sum(r["label"] == name for r in rows) for name in CLASS_NAMES}
    n_blocks = {name: int((splits == k).sum()) for k, name in enumerate(SPLITS)}
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "synthetic": True, "generator": "engine.demo_world",
        "seed": seed, "size": spec.name, "crs": CRS,
        "bounds": {"west": ORIGIN_WEST, "south": ORIGIN_NORTH - spec.extent_m,
                   "east": ORIGIN_WEST + spec.extent_m, "north": ORIGIN_NORTH},
        "bounds_wgs84": {"west": min(clon), "south": min(clat), "east": max(clon), "north": max(clat)},
        "extent_m": spec.extent_m, "pixel_size_m": spec.pixel_m, "mosaic_px": [spec.mosaic_px, spec.mosaic_px],
        "image_px": spec.image_px, "image_size_m": spec.image_m, "suggested_tile_size_m": spec.image_m,
        "mosaic": "mosaic.tif", "land_cover": "land_cover.tif", "pairs": TABLE_NAME,
        "classes": [{"index": c.index, "name": c.name, "colour": c.colour, "description": c.description}
                    for c in CLASSES],
        "sound_layers": list(LAYER_NAMES),
        "audio": {"sample_rate": SAMPLE_RATE, "channels": 1, "seconds": spec.clip_seconds, "format": "FLAC",
                  "subtype": "PCM_16", "gain_db": list(GAIN_DB)},
        "split": {"block_size_m": spec.block_m, "proportions": dict(zip(SPLITS, SPLIT_PROPORTIONS, strict=True)),
                  "blocks": n_blocks, "border_margin_m": spec.image_m / 2},
        "fractions": "lc_<class>: share of each class inside the image footprint (image_size_m square)",
        "counts": {"recordings": spec.recordings,
                   **{name: int((split_of == k).sum()) for k, name in enumerate(SPLITS)}, "labels": labels},
        "_rows": rows,
    }
