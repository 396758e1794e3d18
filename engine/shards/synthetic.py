"""A synthetic folder in the exact SoundingEarth layout, for benchmarks and tests (torch-free).

``metadata.csv`` with the 18 columns of the distribution, ``images/<key>.jpg`` (textured RGB of a chosen
size; at 1024 px and the default quality about 350-400 KB, the size of the real aerial JPEGs, so decoding
costs what it costs on the real data) and ``spectrograms/<key>.jpg`` (8-bit grey, 128 rows x T columns).
Seeded: the same arguments give the same files.
"""

from __future__ import annotations

import csv
import io
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.soundingearth import METADATA_COLUMNS


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate: ``count`` rows, images of ``image_size`` px, log-mels of ``frames`` columns."""

    count: int
    seed: int = 0
    image_size: int = 1024
    image_quality: int = 93
    n_mels: int = 128
    frames: tuple[int, int] = (430, 1300)  # 10-30 s at 43 frames/s


def textured_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """Aerial-like texture: smooth fields at 3 scales plus fine grain, with a random base colour."""
    acc = np.zeros((size, size, 3), np.float32)
    for cell, amp in ((max(size // 8, 1), 60.0), (max(size // 32, 1), 35.0), (max(size // 128, 1), 25.0)):
        n = max(size // cell, 2)
        small = rng.standard_normal((n, n, 3), dtype=np.float32)
        small[..., 1:] = 0.6 * small[..., :1] + 0.4 * small[..., 1:]  # correlated colours, as in nature
        u8 = np.clip(small * amp / 3 + 128, 0, 255).astype(np.uint8)
        acc += 3.0 * (np.asarray(Image.fromarray(u8).resize((size, size), Image.Resampling.BICUBIC),
                                 np.float32) - 128.0)
    acc += rng.normal(0.0, 8.0, (size, size, 3)).astype(np.float32)
    acc += rng.uniform(60, 180, 3).astype(np.float32)
    return np.clip(acc, 0, 255).astype(np.uint8)


def spectrogram_pixels(rng: np.random.Generator, n_mels: int, frames: int) -> np.ndarray:
    """8-bit spectrogram-like pixels: a spectral envelope, bands and temporal events."""
    envelope = np.linspace(200, 90, n_mels)[:, None]
    events = np.asarray(Image.fromarray(rng.uniform(0, 255, (8, max(frames // 20, 2))).astype(np.uint8))
                        .resize((frames, n_mels), Image.Resampling.BICUBIC), np.float32) - 128
    pix = envelope + 0.35 * events + rng.normal(0, 6, (n_mels, frames))
    return np.clip(pix, 0, 255).astype(np.uint8)


def _encode(pixels: np.ndarray, quality: int, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _write_rows(root: Path, spec: SyntheticSpec, start: int, stop: int) -> None:
    for i in range(start, stop):
        rng = np.random.default_rng([spec.seed, i])
        key = 1000 + i
        (root / "images" / f"{key}.jpg").write_bytes(
            _encode(textured_image(rng, spec.image_size), spec.image_quality, "RGB"))
        frames = int(rng.integers(spec.frames[0], spec.frames[1] + 1))
        (root / "spectrograms" / f"{key}.jpg").write_bytes(
            _encode(spectrogram_pixels(rng, spec.n_mels, frames), 90, "L"))


def write_synthetic_soundingearth(out: str | Path, spec: SyntheticSpec, workers: int | None = None) -> Path:
    """Write ``spec.count`` rows in the SoundingEarth layout under ``out`` (created). Returns ``out``."""
    root = Path(out)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "spectrograms").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([spec.seed, 10**9])
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(METADATA_COLUMNS)
        for i in range(spec.count):
            key = 1000 + i
            lon, lat = rng.uniform(-179.0, 179.0), rng.uniform(-60.0, 70.0)
            w.writerow([f"aporee_{i}_{key}", key, f"{lon:.6f}", f"{lat:.6f}", "0", "synthetic", "2020-01-01",
                        "2020-01-02", "bench", "https://creativecommons.org/licenses/by/4.0/", f"row {i}",
                        f"{key}.mp3", "1.0", "20.0", "1", "128", "44100", f"{key}.mp3"])
    workers = max(1, min(workers or os.cpu_count() or 1, spec.count))
    step = -(-spec.count // (workers * 4))
    ranges = [(s, min(s + step, spec.count)) for s in range(0, spec.count, step)]
    if workers == 1:
        for s, e in ranges:
            _write_rows(root, spec, s, e)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_rows, [root] * len(ranges), [spec] * len(ranges),
                          [s for s, _ in ranges], [e for _, e in ranges]))
    return root
