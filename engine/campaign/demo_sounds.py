"""The demo world's sounds with a daily cycle, for the generated campaign (torch-free).

The same per-layer recipes as ``engine.demo_world.mixing`` (what a place sounds like follows the land
cover around it), with the hour of day setting how loud each part is:

- dawn chorus: birds most active 04-08 local time, moderate by day, a little at dusk, almost none at night;
- night insects and frogs (21-04): crickets over meadows, pasture and crops, frog choruses at wetlands
  and lakes, heard more the more of that cover is around;
- traffic and people: peaks 07-09 and 16-19, a normal day in between, much quieter at night; tractors
  and mowers work only by day;
- quieter nights: less wind and a lower background.
"""

from __future__ import annotations

import numpy as np

from engine.demo_world import sounds_nature as nature
from engine.demo_world.birds import Species
from engine.demo_world.config import LAYER, LAYERS
from engine.demo_world.dsp import Scene, band
from engine.demo_world.mixing import LEVEL_EXPONENT, MASKED_BELOW_DB, QUIETEST_LAYER_DB, RECIPES, Mood

HUMAN_LAYERS = ("urban_dense", "urban_suburb", "road")
DAYTIME_WORK = ("farmland_worked",)  # tractors: not at night
CRICKET_LAYERS = ("meadow", "pasture_grazed", "cereal", "maize", "bare_field")
FROG_LAYERS = ("wetland", "lake")
RECORDER_GAIN_DB = -24.0  # scene levels are relative to full scale; this puts a busy day near -35 dBFS


def bird_activity(hour: float) -> float:
    """How busy birds are at a local hour (a multiplier of the demo world's activity)."""
    if 4 <= hour < 8:
        return 2.6  # dawn chorus
    if 8 <= hour < 19:
        return 0.8
    if 19 <= hour < 21:
        return 0.6
    return 0.04


def traffic_level(hour: float) -> float:
    """Traffic and people as a multiplier: rush hours 07-09 and 16-19, little at night."""
    if 7 <= hour < 9 or 16 <= hour < 19:
        return 1.7
    if 6 <= hour < 22:
        return 1.0
    return 0.12


def is_night(hour: float) -> bool:
    return hour >= 21 or hour < 4


def synthesise_at_hour(seed: int, index: int, audibility: np.ndarray, seconds: float, rate: int,
                       species: dict[str, tuple[Species, ...]], hour: float) -> np.ndarray:
    """One recording at a place (its per-layer ``audibility``) at local ``hour`` (0-24): float32 mono.

    Seeded by (``seed``, ``index``) alone, so any process makes the same clip.
    """
    rng = np.random.default_rng([seed, index, 0xDA7])
    scene = Scene(rng, seconds, rate)
    night = is_night(hour)
    traffic = traffic_level(hour)
    mood = Mood(wind=float(rng.beta(2, 2)) * (0.5 if night else 1.0),
                activity=float(rng.uniform(0.6, 1.3)) * bird_activity(hour),
                traffic=float(rng.uniform(0.7, 1.3)) * traffic)
    audibility = np.asarray(audibility, np.float64)
    levels = np.array([layer.level_db for layer in LAYERS]) + 20 * LEVEL_EXPONENT * np.log10(
        np.maximum(audibility, 1e-9)) + rng.normal(0, 2.0, len(LAYERS))
    for name in HUMAN_LAYERS:
        levels[LAYER[name]] += 20 * np.log10(traffic)
    if night:
        for name in DAYTIME_WORK:
            levels[LAYER[name]] = -200.0
    loudest = levels.max()
    for layer, a, level_db in zip(LAYERS, audibility, levels, strict=True):
        if level_db < max(QUIETEST_LAYER_DB, loudest - MASKED_BELOW_DB):
            continue
        RECIPES[layer.index](scene, float(10 ** (level_db / 20)), float(a), mood, species)
    if night:
        _night_chorus(scene, audibility)
    background_db = rng.uniform(-56, -46) if night else rng.uniform(-50, -38)
    scene.add_noise(10 ** (background_db / 20), band(scene.freqs, 40.0, 8000.0, 1.0, -4.0))
    scene.add_noise(10 ** (rng.uniform(-70, -60) / 20), band(scene.freqs, 20.0, 10500.0, 4.0))
    y = scene.render()
    # A fixed recorder gain (not normalised per clip, unlike the demo world's pairs), so quiet nights
    # stay quiet on disk as on a real recorder.
    y *= np.float32(10 ** ((RECORDER_GAIN_DB + rng.normal(0, 1.5)) / 20))
    peak = float(np.abs(y).max())
    if peak > 0.98:
        y *= np.float32(0.98 / peak)
    return y


def _night_chorus(scene: Scene, audibility: np.ndarray) -> None:
    crickets = float(sum(audibility[LAYER[n]] for n in CRICKET_LAYERS))
    frogs = float(sum(audibility[LAYER[n]] for n in FROG_LAYERS))
    if crickets > 0.02:
        nature.crickets(scene, 0.35 * crickets ** LEVEL_EXPONENT)
    if frogs > 0.02:
        nature.frogs(scene, 0.45 * frogs ** LEVEL_EXPONENT)
