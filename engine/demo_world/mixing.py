"""What a recorder hears at a point: each sound layer's sources, mixed by how much of the layer is
around the point (a distance-weighted share, ``audibility``), plus background noise, then set to a
random recording gain.

``audibility`` of a layer at a point is the share of the layer around it weighted by exp(-d / range):
a road or the surf is heard from farther away than a meadow's crickets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from scipy.ndimage import map_coordinates

from engine.demo_world import sounds_human as human
from engine.demo_world import sounds_nature as nature
from engine.demo_world.birds import Species
from engine.demo_world.config import LAYERS
from engine.demo_world.dsp import Scene, band

TARGET_RMS_DBFS = -36.0     # a clip's level at 0 dB gain: a quiet field recording (FLAC stays small)
GAIN_DB = (-30.0, 0.0)      # the recordist's random gain
LEVEL_EXPONENT = 0.6        # amplitude grows as audibility ** this
QUIETEST_LAYER_DB = -45.0   # layers quieter than this (relative to 0 dB) are not synthesised
MASKED_BELOW_DB = 30.0      # nor layers this far below the loudest one


@dataclass(frozen=True)
class Mood:
    """What varies from recording to recording whatever the place: wind, bird activity, traffic."""

    wind: float
    activity: float
    traffic: float


Recipe = Callable[[Scene, float, float, Mood, dict[str, tuple[Species, ...]]], None]


def _sea(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.surf(sc, lvl, near=False)
    nature.birds(sc, lvl * 0.5, sp["coast"], m.activity * a ** 0.5)


def _beach(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.surf(sc, lvl, near=True)
    nature.birds(sc, lvl * 0.7, sp["coast"], m.activity * a ** 0.5)


def _river(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.stream(sc, lvl)


def _lake(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.lapping(sc, lvl * 0.7)
    nature.birds(sc, lvl, sp["lake"], m.activity * a ** 0.5)
    if sc.rng.random() < 0.5:
        nature.frogs(sc, lvl * 0.5)


def _broadleaf(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.foliage(sc, lvl * 0.5 * (0.3 + m.wind), m.wind, "broadleaf")
    nature.birds(sc, lvl, sp["forest_broadleaf"], m.activity * a ** 0.5)


def _conifer(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.foliage(sc, lvl * 0.5 * (0.3 + m.wind), m.wind, "conifer")
    nature.birds(sc, lvl, sp["forest_conifer"], m.activity * a ** 0.5)


def _cereal(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.foliage(sc, lvl * 0.4 * (0.3 + m.wind), m.wind, "crops")
    nature.low_wind(sc, lvl * 0.4, m.wind)
    nature.birds(sc, lvl, sp["cereal"], m.activity * a ** 0.5)


def _maize(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.foliage(sc, lvl * 0.8 * (0.3 + m.wind), m.wind, "maize")
    nature.low_wind(sc, lvl * 0.3, m.wind)
    nature.birds(sc, lvl * 0.6, sp["maize"], m.activity * a ** 0.5)


def _rapeseed(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.bee_swarm(sc, lvl * 0.6)
    nature.foliage(sc, lvl * 0.3 * (0.3 + m.wind), m.wind, "crops")
    nature.birds(sc, lvl, sp["rapeseed"], m.activity * a ** 0.5)


def _bare(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.low_wind(sc, lvl * 0.6, m.wind)
    nature.birds(sc, lvl, sp["bare_field"], m.activity * a ** 0.5)


def _worked(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    human.engine(sc, lvl, "tractor")
    nature.birds(sc, lvl * 0.5, sp["bare_field"][1:], m.activity)  # crows follow the plough


def _meadow(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.crickets(sc, lvl * 0.6)
    nature.grasshoppers(sc, lvl * 0.5)
    nature.bees(sc, lvl * 0.6)
    nature.birds(sc, lvl * 0.7, sp["meadow"], m.activity * a ** 0.5)


def _grazed(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.cows(sc, lvl)
    nature.crickets(sc, lvl * 0.25)
    nature.birds(sc, lvl * 0.7, sp["pasture"], m.activity * a ** 0.5)


def _wetland(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    nature.frogs(sc, lvl)
    nature.foliage(sc, lvl * 0.4 * (0.3 + m.wind), m.wind, "reeds")
    nature.birds(sc, lvl * 0.8, sp["wetland"], m.activity * a ** 0.5)


def _dense(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    rng = sc.rng
    nature_birds = sp["urban"]
    human.voices(sc, lvl * 0.8, int(rng.integers(2, 6)))
    human.footsteps(sc, lvl * 0.5)
    if rng.random() < 0.7:
        human.hum(sc, lvl * 0.25)
    if rng.random() < 0.12:
        human.bell(sc, lvl * 0.8)
    human.traffic_rumble(sc, lvl * 0.35)
    human.vehicles(sc, lvl * 0.4, 0.12 * m.traffic)
    nature.birds(sc, lvl * 0.5, nature_birds, m.activity)


def _suburb(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    rng = sc.rng
    human.dogs(sc, lvl)
    if rng.random() < 0.3:
        human.engine(sc, lvl * 0.6, "mower")
    if rng.random() < 0.4:
        human.voices(sc, lvl * 0.5, 1)
    human.traffic_rumble(sc, lvl * 0.25)
    nature.birds(sc, lvl * 0.8, sp["urban"], m.activity * 1.3)


def _road(sc: Scene, lvl: float, a: float, m: Mood, sp: dict) -> None:
    human.traffic_rumble(sc, lvl * 0.6 * m.traffic ** 0.5)
    human.vehicles(sc, lvl, 0.35 * m.traffic)


RECIPES: tuple[Recipe, ...] = (_sea, _beach, _river, _lake, _broadleaf, _conifer, _cereal, _maize, _rapeseed, _bare,
                               _worked, _meadow, _grazed, _wetland, _dense, _suburb, _road)


def audibility_maps(layers: np.ndarray, pixel_m: float, cell_px: int) -> tuple[np.ndarray, float]:
    """Distance-weighted shares of each sound layer on a grid of ``cell_px``-pixel cells.

    Args:
        layers: (H, W) uint8 sound-layer raster (may be a memory map).
    Returns:
        (maps of shape (n_layers, H / cell_px, W / cell_px) in [0, 1], the cell size in metres).
    """
    h, w = layers.shape[0] // cell_px, layers.shape[1] // cell_px
    n = len(LAYERS)
    counts = np.zeros((n, h, w), np.float32)
    rows_per_pass = max(1, 2048 // cell_px)  # bounded memory: count a band of cells at a time
    col_cell = np.arange(w * cell_px) // cell_px
    for r0 in range(0, h, rows_per_pass):
        r1 = min(h, r0 + rows_per_pass)
        block = np.asarray(layers[r0 * cell_px:r1 * cell_px, :w * cell_px]).astype(np.int64)
        cell = (np.arange((r1 - r0) * cell_px) // cell_px)[:, None] * w + col_cell[None, :]
        hist = np.bincount((cell * n + block).ravel(), minlength=(r1 - r0) * w * n)
        counts[:, r0:r1, :] = hist.reshape(r1 - r0, w, n).transpose(2, 0, 1)
    counts /= cell_px * cell_px
    cell_m = pixel_m * cell_px
    maps = np.empty_like(counts)
    ones = np.ones((h, w), np.float32)
    for layer in LAYERS:
        reach = int(np.ceil(4 * layer.range_m / cell_m))
        k = np.arange(-reach, reach + 1) * cell_m
        kernel = np.exp(-np.hypot(k[:, None], k[None, :]) / layer.range_m).astype(np.float32)
        weighted = _convolve(counts[layer.index], kernel)
        maps[layer.index] = np.clip(weighted / np.maximum(_convolve(ones, kernel), 1e-6), 0, 1)
    return maps, cell_m


def _convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'Same' 2-D convolution with zero padding, through real FFTs."""
    kh, kw = kernel.shape
    shape = (image.shape[0] + kh - 1, image.shape[1] + kw - 1)
    fshape = [sp_fft.next_fast_len(s, real=True) for s in shape]
    out = sp_fft.irfft2(sp_fft.rfft2(image, fshape) * sp_fft.rfft2(kernel, fshape), fshape)
    return out[kh // 2:kh // 2 + image.shape[0], kw // 2:kw // 2 + image.shape[1]].astype(np.float32)


def sample_maps(maps: np.ndarray, cell_m: float, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
    """Bilinear samples of every map at world points; returns (n_points, n_layers)."""
    rows, cols = y_m / cell_m - 0.5, x_m / cell_m - 0.5
    return np.stack([map_coordinates(m, [rows, cols], order=1, mode="nearest") for m in maps], axis=1)


def synthesise(seed: int, index: int, audibility: np.ndarray, seconds: float, rate: int,
               species: dict[str, tuple[Species, ...]]) -> tuple[np.ndarray, float]:
    """The recording at one point: float32 mono samples and the gain (dB) it was recorded at.

    Seeded by (``seed``, ``index``) alone, so any process makes the same clip.
    """
    rng = np.random.default_rng([seed, index, 0x50D])
    scene = Scene(rng, seconds, rate)
    mood = Mood(wind=float(rng.beta(2, 2)), activity=float(rng.uniform(0.4, 1.5)), traffic=float(rng.uniform(0.5, 1.6)))
    levels = np.array([layer.level_db for layer in LAYERS]) + 20 * LEVEL_EXPONENT * np.log10(
        np.maximum(np.asarray(audibility, np.float64), 1e-9)) + rng.normal(0, 2.0, len(LAYERS))
    for layer, a, level_db in zip(LAYERS, audibility, levels, strict=True):
        # Layers far below the loudest are masked anyway; skipping them saves time.
        if level_db < max(QUIETEST_LAYER_DB, levels.max() - MASKED_BELOW_DB):
            continue
        RECIPES[layer.index](scene, float(10 ** (level_db / 20)), float(a), mood, species)
    # Air and distant ambience, and the recorder's own hiss.
    scene.add_noise(10 ** (rng.uniform(-50, -38) / 20), band(scene.freqs, 40.0, 8000.0, 1.0, -4.0))
    scene.add_noise(10 ** (rng.uniform(-70, -60) / 20), band(scene.freqs, 20.0, 10500.0, 4.0))
    if rng.random() < 0.15:  # a gust on the microphone or a handling bump
        bump = np.zeros_like(scene.times)
        t0 = rng.uniform(0, scene.seconds)
        bump[(scene.times > t0) & (scene.times < t0 + rng.uniform(0.2, 1.0))] = 1.0
        scene.add_noise(10 ** (rng.uniform(-20, -6) / 20), band(scene.freqs, 30.0, 300.0, 2.0), bump)
    y = scene.render()
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) or 1.0
    gain_db = float(rng.uniform(*GAIN_DB))
    y *= np.float32(10 ** ((TARGET_RMS_DBFS + gain_db) / 20) / rms)
    peak = float(np.abs(y).max())
    if peak > 0.98:  # a limiter, as a recorder would clip: rare at -24 dBFS RMS
        y *= np.float32(0.98 / peak)
    return y, gain_db
