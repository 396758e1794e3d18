"""Seeded generators of tiny datasets in the real on-disk layouts (run as a script to look at them).

- :func:`make_pair_table`: a learnable pair table (class-coloured JPEGs, class-pitched WAV tones,
  clustered coordinates, a split column), like the demo world but in a second.
- :func:`make_soundingearth`: SoundingEarth exactly as distributed: metadata.csv with all 18 columns,
  images/<key>.jpg (some at the real 1024 px), spectrograms/<key>.jpg in the 8-bit encoding,
  raw_audio/<long_key>/<mp3name> (MP3) for some rows; plus the faults a real copy has: a missing
  image, a corrupt JPEG, a truncated spectrogram, a latitude of 95°, a truncated raw recording.

    python -m tests.engine.fixtures pairs OUT      |   python -m tests.engine.fixtures soundingearth OUT
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from engine.data.soundingearth import METADATA_COLUMNS, encode_spectrogram_jpg

CLASS_COLOURS = np.array([[30, 90, 200], [40, 150, 40], [200, 180, 60], [150, 150, 150]], np.float64)
CLASS_TONES_HZ = (400.0, 1000.0, 2500.0, 5000.0)
CLASS_CENTRES = ((8.0, 50.0), (8.3, 50.2), (7.7, 49.8), (8.2, 49.7))


def _texture(rng: np.random.Generator, size: int, colour: np.ndarray) -> np.ndarray:
    noise = rng.normal(0, 18, (size, size, 1)) + rng.normal(0, 6, (size, size, 3))
    return np.clip(colour * rng.uniform(0.85, 1.15) + noise, 0, 255).astype(np.uint8)


def _tone(rng: np.random.Generator, freq: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    y = np.sin(2 * np.pi * freq * t) * 0.3 + rng.normal(0, 0.02, t.size)
    return (y * 10 ** (rng.uniform(-20, 0) / 20)).astype(np.float32)


def make_pair_table(root: Path, n: int = 48, seed: int = 0, image_px: int = 48, seconds: float = 1.3,
                    rate: int = 16000, split_column: bool = True) -> Path:
    """Write ``root/pairs.csv`` with ``images/`` (JPEG) and ``audio/`` (WAV). Returns the table path.

    Pair i has class i % 4; every sixth pair (i % 6 == 1) is val, i % 6 == 4 is test.
    """
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        c = i % 4
        Image.fromarray(_texture(rng, image_px, CLASS_COLOURS[c])).save(root / "images" / f"p{i:03d}.jpg", quality=90)
        sf.write(root / "audio" / f"p{i:03d}.wav", _tone(rng, CLASS_TONES_HZ[c], seconds, rate), rate)
        lon, lat = CLASS_CENTRES[c]
        row = {"id": f"p{i:03d}", "longitude": round(lon + rng.normal(0, 0.01), 6),
               "latitude": round(lat + rng.normal(0, 0.01), 6), "image": f"images/p{i:03d}.jpg",
               "audio": f"audio/p{i:03d}.wav", "title": f"pair {i}", "label": str(c)}
        if split_column:
            row["split"] = "val" if i % 6 == 1 else "test" if i % 6 == 4 else "train"
        rows.append(row)
    table = root / "pairs.csv"
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return table


@dataclass
class SoundingEarthFixture:
    """What :func:`make_soundingearth` wrote, for the tests to check against."""

    root: Path
    keys: list[int]
    log_mels: dict[int, np.ndarray] = field(default_factory=dict)     # key -> the x values encoded
    centre_colour: dict[int, np.ndarray] = field(default_factory=dict)
    raw_tones: dict[int, float] = field(default_factory=dict)         # key -> tone frequency of raw audio
    missing_image: int = 0
    corrupt_image: int = 0
    truncated_spectrogram: int = 0
    bad_latitude: int = 0
    truncated_raw: int = 0
    full_size: tuple[int, ...] = ()


def make_soundingearth(root: Path, seed: int = 0) -> SoundingEarthFixture:
    """Write a 12-row SoundingEarth folder (see module docstring)."""
    rng = np.random.default_rng(seed)
    for sub in ("images", "spectrograms", "raw_audio"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    keys = list(range(4101, 4113))  # key % 10 runs through 1..9, 0, 1, 2: every split
    fx = SoundingEarthFixture(root, keys, missing_image=keys[1], corrupt_image=keys[2],
                              truncated_spectrogram=keys[3], bad_latitude=keys[4], truncated_raw=keys[8],
                              full_size=(keys[0], keys[5], keys[6]))
    rows = []
    for n, key in enumerate(keys):
        long_key = f"aporee_{1000 + n}_{key}"
        mp3name = f"rec_{key}.mp3" if n not in (8,) else f"rec_{key}.wav"
        lon, lat = float(rng.uniform(-170, 170)), float(rng.uniform(-60, 60))
        if key == fx.bad_latitude:
            lat = 95.0
        rows.append({
            "long_key": long_key, "key": key, "longitude": round(lon, 6), "latitude": round(lat, 6),
            "altitude": round(float(rng.uniform(0, 900)), 1), "description": f"field recording {n}, with a comma",
            "date_recorded": "2019-05-22", "date_uploaded": "2019-06-01", "creator": "tester",
            "licenseurl": "https://creativecommons.org/licenses/by/4.0/", "title": f"Recording {n}",
            "mp3name": mp3name, "mp3mb": 0.1, "mp3seconds": 3.0, "mp3channels": 1, "mp3bitrate": 128,
            "mp3samplerate": 44100, "mp3file": f"{long_key}/{mp3name}"})
        # Image: a textured background with a uniform centre square of a known colour.
        size = 1024 if key in fx.full_size else 256
        colour = rng.integers(30, 226, 3).astype(np.uint8)
        image = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
        q = size // 4
        image[q:size - q, q:size - q] = colour
        fx.centre_colour[key] = colour
        if key == fx.corrupt_image:
            (root / "images" / f"{key}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + rng.bytes(2000))
        elif key != fx.missing_image:
            Image.fromarray(image).save(root / "images" / f"{key}.jpg", quality=92)
        # Spectrogram: smooth values in [-15, 5], stored in the 8-bit exp(x/10) encoding.
        frames = int(rng.integers(120, 400))
        x = np.clip(np.linspace(-14, 4, 128)[:, None] + 2 * np.sin(np.arange(frames) / 7.0)[None, :], -15, 5)
        fx.log_mels[key] = x.astype(np.float32)
        jpg = root / "spectrograms" / f"{key}.jpg"
        Image.fromarray(encode_spectrogram_jpg(x), mode="L").save(jpg, quality=100)
        if key == fx.truncated_spectrogram:
            jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 3])
        # Raw audio for the first nine rows: an MP3 tone (a WAV that is cut short for one row).
        if n < 9:
            folder = root / "raw_audio" / long_key
            folder.mkdir(exist_ok=True)
            tone = float(rng.choice([500.0, 1500.0, 4000.0]))
            y = _tone(rng, tone, 3.0, 44100)
            if key == fx.truncated_raw:
                sf.write(folder / mp3name, y, 44100, subtype="PCM_16")
                data = (folder / mp3name).read_bytes()
                (folder / mp3name).write_bytes(data[: len(data) // 2])
            else:
                sf.write(folder / mp3name, y, 44100, format="MP3")
                fx.raw_tones[key] = tone
    with open(root / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(METADATA_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return fx


if __name__ == "__main__":
    kind, out = sys.argv[1], Path(sys.argv[2])
    if kind == "pairs":
        print(make_pair_table(out))
    else:
        print(make_soundingearth(out).root)
