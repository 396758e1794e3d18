"""Seeded generators of tiny downstream datasets in their official layouts and file formats.

Each class gets its own colour and stripe texture, so a linear probe on a fixed random encoder can
tell the classes apart; noise keeps the task from being trivial. Run as a script to look at them:
``python -m tests.engine.downstream.make_fixtures OUT``.
"""

from __future__ import annotations

import colorsys
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from engine.downstream.deepglobe import CLASSES as DEEPGLOBE_CLASSES
from engine.downstream.deepglobe import encode_mask
from engine.downstream.layouts import SCENE_DATASETS

ADVANCE_CLASSES = ("airport", "beach", "bridge", "farmland", "forest", "grassland", "harbour", "lake",
                   "orchard", "residential", "sparse shrub land", "sports land", "train station")


def class_colour(k: int, n: int) -> np.ndarray:
    """A distinct RGB colour (0-255 floats) for class ``k`` of ``n``."""
    r, g, b = colorsys.hsv_to_rgb(k / n, 0.85 if k % 2 else 0.55, 0.9 if k % 3 else 0.6)
    return np.array([r, g, b]) * 255.0


def scene_image(rng: np.random.Generator, k: int, n: int, size: int) -> np.ndarray:
    """(size, size, 3) uint8: class colour, class stripe period, random phase and pixel noise."""
    yy, xx = np.mgrid[0:size, 0:size]
    period = 4 + (k % 4) * 3
    phase = rng.uniform(0, 2 * np.pi)
    stripes = np.sin(2 * np.pi * (xx + (yy if k % 2 else 0)) / period + phase)[..., None]
    img = class_colour(k, n) * (0.85 + 0.15 * stripes) + rng.normal(0, 12, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_scene_dataset(root: Path, dataset: str, per_class: int = 4, size: int = 32, seed: int = 0) -> Path:
    """Write UC Merced (.tif), AID or NWPU-RESISC45 (.jpg) under ``root``; return the dataset folder."""
    spec = SCENE_DATASETS[dataset]
    rng = np.random.default_rng(seed)
    top = {"ucmerced": root / "UCMerced_LandUse", "aid": root / "AID", "resisc45": root / "NWPU-RESISC45"}[dataset]
    folder = top / "Images" if dataset == "ucmerced" else top
    for k, name in enumerate(spec.classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.fromarray(scene_image(rng, k, len(spec.classes), size))
            if dataset == "ucmerced":
                img.save(folder / name / f"{name}{i:02d}.tif")
            elif dataset == "aid":
                img.save(folder / name / f"{name.lower()}_{i + 1}.jpg", quality=95)
            else:
                img.save(folder / name / f"{name}_{i + 1:03d}.jpg", quality=95)
    return top


def write_advance(root: Path, per_class: int = 4, size: int = 32, seconds: float = 1.0, rate: int = 16000,
                  seed: int = 0) -> Path:
    """ADVANCE layout: vision/<class>/<name>.jpg and sound/<class>/<name>.wav (a class tone in noise)."""
    rng = np.random.default_rng(seed)
    n = len(ADVANCE_CLASSES)
    t = np.arange(int(seconds * rate)) / rate
    for k, name in enumerate(ADVANCE_CLASSES):
        (root / "vision" / name).mkdir(parents=True, exist_ok=True)
        (root / "sound" / name).mkdir(parents=True, exist_ok=True)
        freq = 250.0 * 1.3 ** k
        for i in range(per_class):
            stem = f"{k:02d}{i:03d}"
            Image.fromarray(scene_image(rng, k, n, size)).save(root / "vision" / name / f"{stem}.jpg", quality=95)
            wave = 0.3 * np.sin(2 * np.pi * freq * rng.uniform(0.98, 1.02) * t) + rng.normal(0, 0.03, t.size)
            sf.write(root / "sound" / name / f"{stem}.wav", wave.astype(np.float32), rate, subtype="PCM_16")
    return root


def deepglobe_scene(rng: np.random.Generator, size: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """A blocky land-cover map (a few 'unknown' blocks) and its image (class colour + texture + noise)."""
    n = len(DEEPGLOBE_CLASSES)
    cells = size // block
    grid = rng.integers(0, n, (cells, cells))
    grid[rng.random((cells, cells)) < 0.08] = -1
    labels = np.kron(grid, np.ones((block, block), np.int64))
    img = np.zeros((size, size, 3))
    for k in range(-1, n):
        sel = labels == k
        colour = np.array([40.0, 40.0, 40.0]) if k < 0 else class_colour(k, n)
        img[sel] = colour
    img += rng.normal(0, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), labels


def write_deepglobe(root: Path, n_images: int = 10, size: int = 64, block: int = 16, seed: int = 0) -> Path:
    """DeepGlobe layout: train/<id>_sat.jpg and train/<id>_mask.png with the 7 RGB codes."""
    rng = np.random.default_rng(seed)
    folder = root / "train"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        sample_id = str(100 + 37 * i)
        img, labels = deepglobe_scene(rng, size, block)
        # 4:4:4 chroma: block edges stay sharp, so a colour oracle labels every pixel right
        Image.fromarray(img).save(folder / f"{sample_id}_sat.jpg", quality=95, subsampling=0)
        Image.fromarray(encode_mask(labels)).save(folder / f"{sample_id}_mask.png")
    return root


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "downstream-fixtures")
    for key in SCENE_DATASETS:
        write_scene_dataset(out, key)
    write_advance(out / "ADVANCE")
    write_deepglobe(out / "DeepGlobe")
    print(out)
