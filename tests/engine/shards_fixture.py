"""A tiny SoundingEarth folder in the exact layout, with the faults prepare must survive.

Seeded: real-size 1024 px JPEGs (so the default geometry and DCT scaling are exercised as on the real
data), 8-bit spectrograms, and rows with a corrupt image, a missing spectrogram and a latitude of 95.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from engine.shards.synthetic import SyntheticSpec, write_synthetic_soundingearth

N_ROWS = 14
CORRUPT_KEY = "1003"
NO_SPECTROGRAM_KEY = "1004"
BAD_LATITUDE_KEY = "1005"


def make_soundingearth(root: Path, rows: int = N_ROWS, image_size: int = 1024) -> Path:
    write_synthetic_soundingearth(root, SyntheticSpec(rows, seed=3, image_size=image_size, frames=(60, 140)),
                                  workers=1)
    data = (root / "images" / f"{CORRUPT_KEY}.jpg").read_bytes()
    (root / "images" / f"{CORRUPT_KEY}.jpg").write_bytes(data[:600])  # truncated inside the scan data
    (root / "spectrograms" / f"{NO_SPECTROGRAM_KEY}.jpg").unlink()
    with open(root / "metadata.csv", newline="") as f:
        table = list(csv.reader(f))
    for row in table[1:]:
        if row[1] == BAD_LATITUDE_KEY:
            row[3] = "95.0"
    with open(root / "metadata.csv", "w", newline="") as f:
        csv.writer(f).writerows(table)
    return root


def metadata_rows(root: Path) -> dict[str, dict[str, str]]:
    with open(root / "metadata.csv", newline="") as f:
        return {row["key"]: row for row in csv.DictReader(f)}


def log_mel_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """The SoundingEarth decoding written out from its definition: v = p (e^0.5 - e^-1.5)/255 + e^-1.5,
    x = 10 ln v; then each clip standardised by its mean and std (std floored at 1), as the front-end does."""
    v = pixels.astype(np.float64) * (math.exp(0.5) - math.exp(-1.5)) / 255.0 + math.exp(-1.5)
    x = 10.0 * np.log(v)
    return (x - x.mean()) / max(x.std(), 1.0)
