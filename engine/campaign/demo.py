"""``generate_campaign``: a synthetic field campaign in the real shapes, from the demo world (torch-free).

    DIR/recordings/...     recorder folders: AudioMoth (YYYYMMDD_HHMMSS.WAV in UTC with the AudioMoth
                           comment, CONFIG.TXT beside them), Song Meter SM4 with GUANO (Loc Position,
                           Timestamp, Serial) and Song Meter without (placed only by the sites table)
    DIR/sites.csv          site, longitude, latitude, recorder, timezone
    DIR/imagery/ortho.tif  the demo world's mosaic, EPSG:32632 (UTM 32N); land_cover.tif beside it
    DIR/truth.csv          what was generated: path, site, recorder, kind, longitude, latitude, start_utc
    DIR/README.txt

The sounds at a site follow the land cover around it (the demo world's mixing) with a daily cycle (see
``engine.campaign.demo_sounds``); each site records ``files_per_site`` files spread over one day, as a
recorder on a duty cycle does. Written into a hidden folder and renamed at the end.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from engine.campaign import demo_files
from engine.campaign.demo_files import TIMEZONE
from engine.demo_world import worker
from engine.demo_world.birds import world_species
from engine.demo_world.config import CLASS_NAMES, CRS, ORIGIN_NORTH, ORIGIN_WEST, world_size
from engine.demo_world.land_cover import LAYER_TO_CLASS, calibrate
from engine.demo_world.layout import plan_world
from engine.demo_world.mixing import audibility_maps, sample_maps
from engine.demo_world.points import CLASS_WEIGHTS
from engine.demo_world.writing import TILE_PX, write_geotiffs
from engine.errors import ConfigError
from engine.files import check_new_folder, write_whole_folder
from engine.progress import Job

DAY = (2024, 6, 15)  # local date of the first file: a day in the breeding season, in the past
EDGE_MARGIN_M = 160.0  # sites keep this far from the mosaic's edge, so a 256 m chip fits around them
KINDS = ("audiomoth", "song-meter-guano", "song-meter")


@dataclass(frozen=True)
class DemoCampaignSummary:
    folder: Path
    sites: int
    files: int
    file_seconds: float
    sample_rate: int
    hours: float
    bytes_on_disk: int
    seconds: float
    workers: int
    world: str

    def describe(self) -> str:
        return (f"Synthetic campaign written to {self.folder}: {self.sites} sites, {self.files} files of "
                f"{self.file_seconds:g} s at {self.sample_rate} Hz ({self.hours:.2f} h of audio) from AudioMoth and "
                f"Song Meter recorders, a sites table and an orthophoto (demo world '{self.world}', {CRS}); "
                f"{self.bytes_on_disk / 2**20:.0f} MB in {self.seconds:.1f} s with {self.workers} process"
                f"{'es' if self.workers > 1 else ''}. Scan it with: soundscape-engine campaign scan --recordings "
                f"{self.folder / 'recordings'} --sites {self.folder / 'sites.csv'} --imagery "
                f"{self.folder / 'imagery' / 'ortho.tif'} --out CAMPAIGN")


def generate_campaign(out: str | Path, sites: int = 40, files_per_site: int = 12, file_seconds: float = 60.0,
                      seed: int = 0, world: str = "small", sample_rate: int = 22_050, workers: int | None = None,
                      job: Job | None = None) -> DemoCampaignSummary:
    """Generate a campaign into the new folder ``out`` (see the module docstring).

    Raises:
        ConfigError: a bad count, length, rate or world size. DatasetError: ``out`` exists and is not empty.
        Cancelled: through ``job``; nothing is left behind.
    """
    spec = world_size(world)
    _check(sites, files_per_site, file_seconds, sample_rate, seed)
    out = Path(out).expanduser()
    check_new_folder(out, "demo campaign")
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, int(workers))
    job = job or Job()
    begin = time.perf_counter()
    n_files = write_whole_folder(
        out, lambda folder: _generate(folder, spec, sites, files_per_site, float(file_seconds), seed, sample_rate,
                                      workers, job), "demo campaign")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return DemoCampaignSummary(out, sites, n_files, float(file_seconds), sample_rate,
                               n_files * float(file_seconds) / 3600, size, time.perf_counter() - begin, workers, world)


def _check(sites: int, files_per_site: int, file_seconds: float, sample_rate: int, seed: int) -> None:
    if not 1 <= sites <= 500:
        raise ConfigError("--sites", f"{sites} sites", "use 1 to 500")
    if not 1 <= files_per_site <= 288:
        raise ConfigError("--files-per-site", f"{files_per_site} files a day", "use 1 to 288 (one every 5 minutes)")
    if not 1.0 <= file_seconds <= min(3600.0, 86400.0 / files_per_site):
        raise ConfigError("--file-seconds", f"{file_seconds:g} s", "use 1 s up to the gap between files")
    if not 16_000 <= sample_rate <= 96_000:
        raise ConfigError("--sample-rate", f"{sample_rate} Hz", "use 16000 to 96000 (22050 is the front-end's rate)")
    if seed < 0:
        raise ConfigError("--seed", f"{seed} is negative", "use e.g. --seed 0")


def _generate(folder: Path, spec, n_sites: int, files_per_site: int, seconds: float, seed: int, rate: int,
              workers: int, job: Job) -> int:
    scratch = folder / "_scratch"
    for sub in ("recordings", "imagery", "_scratch"):
        (folder / sub).mkdir()
    n_px = spec.mosaic_px
    strips = -(-n_px // TILE_PX)
    total = strips * strips + 2 * strips + 2 + n_sites + 1
    done = 0

    def step(message: str, units: int = 1) -> None:
        nonlocal done
        done += units
        job.report(done, total, message)
        job.check()

    job.report(0, total, "planning")
    layout = calibrate(plan_world(seed, spec))
    species = world_species(np.random.default_rng([seed, 0xB1D]))
    rgb_path, layer_path = scratch / "rgb.npy", scratch / "layers.npy"
    np.lib.format.open_memmap(rgb_path, mode="w+", dtype=np.uint8, shape=(n_px, n_px, 3)).flush()
    np.lib.format.open_memmap(layer_path, mode="w+", dtype=np.uint8, shape=(n_px, n_px)).flush()
    pool = None
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=worker.ignore_interrupts)
    try:
        tiles = [worker.TileTask(layout, spec.name, r, c, min(TILE_PX, n_px - r), min(TILE_PX, n_px - c),
                                 rgb_path, layer_path)
                 for r in range(0, n_px, TILE_PX) for c in range(0, n_px, TILE_PX)]
        for _ in _run(pool, worker.render_tile, tiles):
            step("rendering the land")
        layers = np.load(layer_path, mmap_mode="r")
        cell_px = max(1, int(round(8.0 / spec.pixel_m)))
        maps, cell_m = audibility_maps(layers, spec.pixel_m, cell_px)
        classes = LAYER_TO_CLASS[np.asarray(layers[cell_px // 2::cell_px, cell_px // 2::cell_px])]
        x, y = _place_sites(seed, n_sites, classes, cell_m, spec.extent_m)
        audible = sample_maps(maps, cell_m, x, y).astype(np.float32)
        site_list = _describe_sites(seed, x, y)
        tasks = [demo_files.SiteTask(seed, i, s, audible[i], tuple(_schedule(seed, i, files_per_site)), seconds,
                                     rate, species, folder / "recordings")
                 for i, s in enumerate(site_list)]
        rgb = np.load(rgb_path, mmap_mode="r")
        write_geotiffs(folder / "imagery", rgb, lambda r0, r1: LAYER_TO_CLASS[np.asarray(layers[r0:r1])],
                       ORIGIN_WEST, ORIGIN_NORTH, spec.pixel_m, lambda: step("writing the orthophoto"))
        (folder / "imagery" / "mosaic.tif").rename(folder / "imagery" / "ortho.tif")
        truth: list[dict[str, str]] = []
        for rows in _run(pool, demo_files.make_site_files, tasks):
            truth += rows
            step("recording")
    except BaseException:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    if pool:
        pool.shutdown(wait=True)
    _write_tables(folder, site_list, truth)
    (folder / "README.txt").write_text(_readme(n_sites, files_per_site, seconds, rate, spec.name, seed), encoding="utf-8")
    step("done")
    return len(truth)


def _run(pool, fn, tasks):  # noqa: ANN001, ANN202
    """Yield results as tasks finish (in this process when there is no pool)."""
    if pool is None:
        yield from (fn(t) for t in tasks)
        return
    from concurrent.futures import as_completed

    yield from (f.result() for f in as_completed([pool.submit(fn, t) for t in tasks]))


def _place_sites(seed: int, n: int, classes: np.ndarray, cell_m: float, extent_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Sites on land, weighted by class as a survey would choose them, at least a chip apart if they fit."""
    rng = np.random.default_rng([seed, 0x517E])
    h, w = classes.shape
    cy, cx = (np.mgrid[0:h, 0:w] + 0.5) * cell_m
    ok = (cx > EDGE_MARGIN_M) & (cx < extent_m - EDGE_MARGIN_M) & (cy > EDGE_MARGIN_M) & (cy < extent_m - EDGE_MARGIN_M)
    weights = np.array([0.0 if name == "sea" else CLASS_WEIGHTS[name] for name in CLASS_NAMES])[classes] * ok
    p = (weights / weights.sum()).ravel()
    spacing = 300.0
    chosen: list[tuple[float, float]] = []
    while len(chosen) < n:
        for cell in rng.choice(p.size, size=64 * n, p=p):
            px, py = float(cx.ravel()[cell]), float(cy.ravel()[cell])
            if all((px - qx) ** 2 + (py - qy) ** 2 >= spacing ** 2 for qx, qy in chosen):
                chosen.append((px, py))
                if len(chosen) == n:
                    break
        spacing *= 0.8  # too many sites for this spacing: bring them closer
    xy = np.array(chosen)
    return xy[:, 0], xy[:, 1]


def _describe_sites(seed: int, x: np.ndarray, y: np.ndarray) -> list[demo_files.DemoSite]:
    from rasterio.warp import transform

    lon, lat = transform(CRS, "EPSG:4326", (ORIGIN_WEST + x).tolist(), (ORIGIN_NORTH - y).tolist())
    rng = np.random.default_rng([seed, 0x2EC])
    digits = max(2, len(str(len(x))))
    out = []
    for i in range(len(x)):
        kind = KINDS[i % len(KINDS)]
        name = f"site-{i + 1:0{digits}d}"
        if kind == "audiomoth":
            recorder = "".join(rng.choice(list("0123456789ABCDEF"), 16))
            rel = name
        else:
            recorder = f"S4A{int(rng.integers(0, 100_000)):05d}"
            rel = f"deployment-1/{recorder}/Data" if kind == "song-meter" else f"deployment-1/{recorder}"
        out.append(demo_files.DemoSite(name, kind, recorder, rel, round(lon[i], 6), round(lat[i], 6)))
    return out


def _schedule(seed: int, index: int, files: int) -> list[datetime]:
    """Start times (UTC) of a site's files: evenly over one local day from a random phase, on the minute."""
    rng = np.random.default_rng([seed, index, 0x5C4])
    gap_min = 24 * 60 / files
    phase = float(rng.uniform(0, gap_min))
    midnight = datetime(*DAY, tzinfo=ZoneInfo(TIMEZONE))
    local = [midnight + timedelta(minutes=int(phase + k * gap_min)) for k in range(files)]
    return [t.astimezone(UTC) for t in local]


def _write_tables(folder: Path, sites: list[demo_files.DemoSite], truth: list[dict[str, str]]) -> None:
    with open(folder / "sites.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["site", "longitude", "latitude", "recorder", "timezone"])
        for s in sites:
            writer.writerow([s.name, f"{s.lon:.6f}", f"{s.lat:.6f}", s.recorder, TIMEZONE])
    with open(folder / "truth.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(truth[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(truth, key=lambda r: r["path"]))


def _readme(sites: int, files: int, seconds: float, rate: int, world: str, seed: int) -> str:
    return f"""Synthetic field campaign (Soundscape Mapper) - everything here is generated, nothing was recorded.

Made by `soundscape-engine demo-world --campaign` from seed {seed} (demo world '{world}'): {sites} sites, each
recording {files} files of {seconds:g} s spread over one day ({DAY[0]}-{DAY[1]:02d}-{DAY[2]:02d}, {TIMEZONE}), mono
16-bit WAV at {rate} Hz. The sounds at a site follow the land cover around it, with a daily cycle: dawn chorus
(04-08), night insects and frogs (21-04), traffic peaks (07-09, 16-19), quieter nights.

recordings/site-NN/                        AudioMoth: YYYYMMDD_HHMMSS.WAV (UTC) with the AudioMoth comment
                                           (device id, gain, battery, temperature) and CONFIG.TXT
recordings/deployment-1/S4A0xxxx/          Song Meter SM4 with GUANO metadata (Timestamp, Loc Position, Serial)
recordings/deployment-1/S4A0xxxx/Data/     Song Meter without GUANO: placed by the sites table (recorder column)
sites.csv                                  site, longitude, latitude, recorder, timezone
imagery/ortho.tif                          orthophoto (EPSG:32632, UTM zone 32N); land_cover.tif: its classes
truth.csv                                  every file's site, recorder and start time, for checking a scan

Scan it:  soundscape-engine campaign scan --recordings recordings --sites sites.csv --imagery imagery/ortho.tif --out campaign
"""
