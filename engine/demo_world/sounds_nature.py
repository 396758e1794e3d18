"""Natural sound sources: surf, streams, lapping water, wind in leaves, needles, reeds and crops,
crickets, grasshoppers, bees and frogs. Each adds itself to a :class:`~engine.demo_world.dsp.Scene`
at an amplitude ``level`` (an RMS for noise, about the peak for events)."""

from __future__ import annotations

import numpy as np

from engine.demo_world.birds import Species, song
from engine.demo_world.dsp import Scene, band, envelope, gusts, poisson_times, smooth_random, tone


def surf(scene: Scene, level: float, near: bool) -> None:
    """Breaking waves every 5-10 s over a steady roar; near the water also the fizz of foam."""
    rng, t = scene.rng, scene.times
    period = rng.uniform(5.0, 10.0)
    crash = np.zeros_like(t)
    start = -rng.uniform(0, period)
    while start < scene.seconds:
        dt = t - start
        rise = np.clip((dt + 0.9) / 0.9, 0, 1) * (dt < 0)
        fall = np.exp(-np.clip(dt, 0, None) / rng.uniform(1.4, 2.4)) * (dt >= 0)
        crash += rng.uniform(0.6, 1.2) * (rise ** 2 + fall)
        start += period * rng.uniform(0.8, 1.2)
    roar = 0.45 + crash
    top = 2500.0 if near else 700.0
    scene.add_noise(level, band(scene.freqs, 45.0, top, 1.5, -2.0), roar)
    if near:
        scene.add_noise(level * 0.5, band(scene.freqs, 1800.0, 9000.0, 2.0), 0.15 + crash ** 1.5)


def stream(scene: Scene, level: float) -> None:
    """Flowing water: a bright babble with fast swells, and bubbles popping at random."""
    rng = scene.rng
    babble = 0.6 + 0.6 * smooth_random(rng, scene.times, 12.0) ** 2
    scene.add_noise(level, band(scene.freqs, 250.0, 6000.0, 1.5, peak=rng.uniform(700, 1400)), babble)
    for start in poisson_times(rng, rng.uniform(8, 20), scene.seconds):
        n = int(rng.uniform(0.006, 0.025) * scene.rate)
        f0 = rng.uniform(500, 2600)
        freq = np.linspace(f0, f0 * 1.25, n, dtype=np.float32)
        bubble = tone(freq, scene.rate) * np.exp(-np.arange(n, dtype=np.float32) / (n / 4))
        scene.add(bubble, start, level * rng.uniform(0.5, 1.5))


def lapping(scene: Scene, level: float) -> None:
    """Still water: small waves lapping at the shore, now and then a plop."""
    rng, t = scene.rng, scene.times
    laps = np.zeros_like(t)
    for start in poisson_times(rng, 1.2, scene.seconds, lead=0.5):
        dt = np.clip(t - start, 0, None)
        laps += rng.uniform(0.5, 1.0) * (dt > 0) * np.exp(-dt / 0.25)
    scene.add_noise(level, band(scene.freqs, 120.0, 1500.0, 2.0, peak=400.0), 0.2 + laps)


def foliage(scene: Scene, level: float, wind: float, kind: str) -> None:
    """Wind in leaves ('broadleaf': rustling mid band), needles ('conifer': a high steady hiss),
    'reeds', tall 'maize' (a loud low clatter) or other 'crops', swelling with the gusts."""
    rng = scene.rng
    env = gusts(rng, scene.times, wind)
    if kind == "broadleaf":
        env = env * (0.7 + 0.6 * smooth_random(rng, scene.times, 7.0))
        shape = band(scene.freqs, 600.0, 7000.0, 1.5, peak=2200.0)
    elif kind == "conifer":
        shape = band(scene.freqs, 1800.0, 10500.0, 1.5, 1.0, peak=5000.0)
    elif kind == "maize":
        env = env * (0.6 + 0.8 * smooth_random(rng, scene.times, 5.0))
        shape = band(scene.freqs, 300.0, 2600.0, 1.5, peak=800.0)
    elif kind == "reeds":
        env = env * (0.8 + 0.4 * smooth_random(rng, scene.times, 4.0))
        shape = band(scene.freqs, 900.0, 6000.0, 2.0, peak=3000.0)
    else:
        shape = band(scene.freqs, 350.0, 3000.0, 1.5, peak=900.0)
    scene.add_noise(level, shape, env)


def low_wind(scene: Scene, level: float, wind: float) -> None:
    """The rumble of wind over open ground."""
    scene.add_noise(level * (0.3 + wind), band(scene.freqs, 50.0, 260.0, 2.0), gusts(scene.rng, scene.times, wind))


def crickets(scene: Scene, level: float) -> None:
    """A few crickets chirping at 3.5-5.5 kHz: chirps of 3-5 pulses (25-40 a second) repeated."""
    rng, rate = scene.rng, scene.rate
    for _ in range(int(rng.integers(2, 5))):
        carrier = rng.uniform(3500, 5500)
        chirp_rate, pulses, pulse_rate = rng.uniform(1.5, 3.5), int(rng.integers(3, 6)), rng.uniform(25, 40)
        period = int(rate / pulse_rate)
        on = period // 2
        t = np.arange(pulses * period, dtype=np.float32) / np.float32(rate)
        gate = ((np.arange(t.size) % period) < on).astype(np.float32) * envelope(t.size, on // 3, on // 3)
        chirp = np.sin(np.float32(2 * np.pi * carrier) * t) * gate
        gain = level * rng.uniform(0.3, 1.0)
        start = -rng.uniform(0, 1 / chirp_rate)
        while start < scene.seconds:
            scene.add(chirp, start, gain)
            start += 1 / chirp_rate


def grasshoppers(scene: Scene, level: float) -> None:
    """Stridulation: bursts of buzzing high noise (6-10 kHz), pulsed about 20 times a second."""
    rng, t = scene.rng, scene.times
    env = np.zeros_like(t)
    for start in poisson_times(rng, 0.5, scene.seconds, lead=2.0):
        length = rng.uniform(0.8, 2.5)
        on = (t >= start) & (t < start + length)
        env += on * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(14, 24) * (t - start)) ** 2)
    scene.add_noise(level, band(scene.freqs, 5500.0, 10500.0, 3.0), 0.05 + env)


def bees(scene: Scene, level: float) -> None:
    """A bee or fly passing: a buzz at 180-250 Hz with harmonics, fading in and out."""
    rng = scene.rng
    for start in poisson_times(rng, 0.25, scene.seconds, lead=1.0):
        n = int(rng.uniform(1.0, 2.5) * scene.rate)
        f = rng.uniform(180, 250) * (1 + 0.03 * np.sin(np.linspace(0, rng.uniform(10, 30), n, dtype=np.float32)))
        buzz = tone(f, scene.rate, (1.0, 0.7, 0.5, 0.35, 0.25, 0.15)) * envelope(n, n // 3, n // 3)
        scene.add(buzz, start, level * 0.5)


def frogs(scene: Scene, level: float) -> None:
    """A frog chorus: croaks of pulsed tones at 400-1100 Hz from a few frogs."""
    rng = scene.rng
    for _ in range(int(rng.integers(2, 5))):
        carrier, pulse_rate = rng.uniform(400, 1100), rng.uniform(25, 60)
        croak_s = rng.uniform(0.2, 0.5)
        n = int(croak_s * scene.rate)
        t = np.arange(n, dtype=np.float32) / scene.rate
        pulses = np.exp(-((t * pulse_rate) % 1.0) * 5.0)
        croak = tone(np.full(n, carrier, np.float32), scene.rate, (1.0, 0.5, 0.25)) * pulses * envelope(n, n // 10, n // 4)
        gain = level * rng.uniform(0.4, 1.0)
        for start in poisson_times(rng, rng.uniform(0.6, 1.6), scene.seconds, lead=croak_s):
            scene.add(croak, start, gain)


def birds(scene: Scene, level: float, species: tuple[Species, ...], activity: float) -> None:
    """Songs of the habitat's species at random times (rate scaled by ``activity``)."""
    rng = scene.rng
    for sp in species:
        for start in poisson_times(rng, sp.songs_per_s * activity, scene.seconds, lead=1.0):
            distance_db = rng.uniform(-14, 0) + sp.level_db
            scene.add(song(rng, sp, scene.rate), start, level * 10 ** (distance_db / 20))


def bee_swarm(scene: Scene, level: float) -> None:
    """Many bees over a flowering field: a drone on the harmonics of 190-260 Hz, swelling slowly."""
    rng = scene.rng
    f0 = rng.uniform(190, 260)
    f = np.maximum(scene.freqs, 1.0)
    comb = sum(np.exp(-0.5 * ((f - k * f0) / (12.0 * k ** 0.5)) ** 2) * k ** -0.6 for k in range(1, 13))
    comb = (comb / np.sqrt(np.sum(comb ** 2))).astype(np.float32)
    scene.add_noise(level, comb, 0.6 + 0.6 * smooth_random(rng, scene.times, 0.6))


def cows(scene: Scene, level: float) -> None:
    """A grazing herd: now and then a moo (a low voice gliding up and down through an 'oo' vowel) and
    the irregular clank of cowbells."""
    rng, rate = scene.rng, scene.rate
    for start in poisson_times(rng, 0.25, scene.seconds, lead=2.0):
        n = int(rng.uniform(1.0, 2.2) * rate)
        t = np.linspace(0, 1, n, dtype=np.float32)
        f0 = rng.uniform(85, 140) * (1 + 0.35 * np.sin(np.pi * t) - 0.15 * t)
        voiced = tone(f0, rate, (1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.12, 0.08))
        scene.add(voiced * envelope(n, n // 4, n // 3) * np.float32(0.5), start, level * rng.uniform(0.4, 1.0))
    bell_f = rng.uniform(1100, 2000)
    m = int(0.3 * rate)
    tb = np.arange(m, dtype=np.float32) / rate
    clank = sum(a * np.sin(2 * np.pi * bell_f * r * tb) * np.exp(-tb / d)
                for r, a, d in ((1.0, 1.0, 0.12), (2.76, 0.6, 0.06), (5.4, 0.4, 0.03))).astype(np.float32)
    for start in poisson_times(rng, rng.uniform(0.5, 2.5), scene.seconds):
        scene.add(clank, start, level * 0.3 * rng.uniform(0.3, 1.0))
