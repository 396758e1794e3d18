"""The two kinds of work a generator process does: render a tile of the mosaic, and make the image
and recording of a batch of points. Both are pure functions of their task (seeded per item), so the
result does not depend on which process runs them or in what order."""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from engine.demo_world.birds import Species
from engine.demo_world.config import CLASSES, SAMPLE_RATE, SIZES
from engine.demo_world.imagery import SHADOW_REACH_M, render
from engine.demo_world.land_cover import LAYER_TO_CLASS, classify
from engine.demo_world.layout import Layout
from engine.demo_world.mixing import synthesise

JPEG_QUALITY = 90


def ignore_interrupts() -> None:
    """Pool initializer: Ctrl-C is for the main process, which cancels the work and cleans up; a
    worker interrupted mid-task would leave the pool hanging."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass(frozen=True)
class TileTask:
    layout: Layout
    size: str
    row: int
    col: int
    rows: int
    cols: int
    rgb_path: Path
    layer_path: Path


def render_tile(task: TileTask) -> int:
    """Classify and render one tile (with a margin for shadows) into the shared memory maps."""
    size = SIZES[task.size]
    px = size.pixel_m
    margin = math.ceil(SHADOW_REACH_M / px)
    rows = np.arange(task.row - margin, task.row + task.rows + margin)
    cols = np.arange(task.col - margin, task.col + task.cols + margin)
    xs, ys = (cols + 0.5) * px, (rows + 0.5) * px
    cover = classify(task.layout, xs, ys)
    rgb = render(task.layout, cover, xs, ys, px)
    inner = (slice(margin, margin + task.rows), slice(margin, margin + task.cols))
    out_rgb = np.load(task.rgb_path, mmap_mode="r+")
    out_layer = np.load(task.layer_path, mmap_mode="r+")
    window = (slice(task.row, task.row + task.rows), slice(task.col, task.col + task.cols))
    out_rgb[window] = rgb[inner]
    out_layer[window] = cover.layer[inner]
    out_rgb.flush()
    out_layer.flush()
    del out_rgb, out_layer
    return task.rows * task.cols


@dataclass(frozen=True)
class PointTask:
    seed: int
    size: str
    folder: Path
    rgb_path: Path
    layer_path: Path
    species: dict[str, tuple[Species, ...]]
    items: tuple[tuple[int, float, float, np.ndarray], ...]  # (index, x m, y m, audibility per layer)


@dataclass(frozen=True)
class PointResult:
    index: int
    fractions: np.ndarray  # share of each land class in the image footprint
    gain_db: float


def image_name(index: int) -> str:
    return f"images/{index:06d}.jpg"


def audio_name(index: int) -> str:
    return f"audio/{index:06d}.flac"


def make_points(task: PointTask) -> list[PointResult]:
    """Write the image (a crop of the mosaic) and the recording of each point in the batch."""
    size = SIZES[task.size]
    rgb = np.load(task.rgb_path, mmap_mode="r")
    layers = np.load(task.layer_path, mmap_mode="r")
    half = size.image_px // 2
    results = []
    for index, x, y, audibility in task.items:
        col, row = int(round(x / size.pixel_m)), int(round(y / size.pixel_m))
        window = (slice(row - half, row + half), slice(col - half, col + half))
        Image.fromarray(np.ascontiguousarray(rgb[window])).save(
            task.folder / image_name(index), quality=JPEG_QUALITY, optimize=True)
        classes = LAYER_TO_CLASS[np.asarray(layers[window])]
        fractions = np.bincount(classes.ravel(), minlength=len(CLASSES)) / classes.size
        samples, gain_db = synthesise(task.seed, index, audibility, size.clip_seconds, SAMPLE_RATE, task.species)
        sf.write(task.folder / audio_name(index), samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        results.append(PointResult(index, fractions, gain_db))
    return results
