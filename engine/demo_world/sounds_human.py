"""Sound sources of people and machines: traffic (a distant rumble and passing vehicles with
Doppler), tractors and lawnmowers, voices, footsteps, building hum, a church bell and dogs."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from engine.demo_world.dsp import (
    Scene,
    band,
    envelope,
    formants,
    poisson_times,
    pulse_train,
    resonate,
    sawtooth,
    smooth_random,
    tone,
)

SPEED_OF_SOUND = 343.0


def _lowpass(x: np.ndarray, rate: int, cutoff: float) -> np.ndarray:
    a = np.exp(-2 * np.pi * cutoff / rate)
    return lfilter([1 - a], [1, -a], x).astype(np.float32)


def traffic_rumble(scene: Scene, level: float) -> None:
    """Traffic heard from afar: a low, slowly swelling rumble."""
    env = 0.6 + 0.5 * smooth_random(scene.rng, scene.times, 0.4)
    scene.add_noise(level, band(scene.freqs, 45.0, 600.0, 1.5, -3.0), env)


def vehicles(scene: Scene, level: float, per_second: float) -> None:
    """Vehicles passing at 50-100 km/h, 8-60 m away: tyre roar swelling and fading, an engine tone
    whose pitch drops as it passes (Doppler); one in six is a lorry (lower, louder, longer)."""
    rng, t = scene.rng, scene.times
    tyre_power = np.zeros_like(t)
    for t0 in poisson_times(rng, per_second, scene.seconds + 3.0, lead=3.0):
        lorry = rng.random() < 0.17
        speed, dist = rng.uniform(14, 28), rng.uniform(8, 60)
        loud = rng.uniform(0.6, 1.0) * (1.8 if lorry else 1.0)
        closeness = 1.0 / (1.0 + ((t - t0) * speed / dist) ** 2)
        tyre_power += (loud * closeness) ** 2
        # The engine is synthesised only while it is within 3 closest-distances and inside the clip.
        half = min(2.5, 3.0 * dist / speed)
        a, b = max(t0 - half, 0.0), min(t0 + half, scene.seconds)
        if b - a < 0.05:
            continue
        tt = a - t0 + np.arange(int((b - a) * scene.rate), dtype=np.float32) / scene.rate
        along = tt * speed
        radial = speed * along / np.sqrt(dist ** 2 + along ** 2)
        f0 = (rng.uniform(28, 40) if lorry else rng.uniform(45, 80)) * SPEED_OF_SOUND / (SPEED_OF_SOUND + radial)
        engine = _lowpass(sawtooth(f0, scene.rate), scene.rate, 600.0 if lorry else 900.0)
        scene.add(engine * (loud / np.sqrt(1.0 + (along / dist) ** 2)), a, level * 0.8)
    scene.add_noise(level, band(scene.freqs, 250.0, 5000.0, 1.5, peak=1000.0), np.sqrt(tyre_power))


def engine(scene: Scene, level: float, kind: str) -> None:
    """A working engine: a 'tractor' (diesel, 25-38 firings/s, clanking) or a 'mower' (two-stroke)."""
    rng, n = scene.rng, scene.n
    if kind == "tractor":
        f0, bright, noise_band = rng.uniform(25, 38), 450.0, (900.0, 3500.0)
    else:
        f0, bright, noise_band = rng.uniform(45, 60), 1400.0, (600.0, 5000.0)
    wander = 1 + 0.08 * (np.interp(np.arange(n), np.linspace(0, n, 6), rng.random(6)) - 0.5)
    x = _lowpass(sawtooth((f0 * wander).astype(np.float32), scene.rate), scene.rate, bright)
    x += 0.6 * resonate(pulse_train((f0 * wander).astype(np.float32), scene.rate), scene.rate, bright * 1.5, 300.0)
    near = 0.4 + 0.6 * np.interp(np.arange(n), np.linspace(0, n, 4), rng.random(4)).astype(np.float32)
    scene.add(x * near / (np.std(x) + 1e-9), 0.0, level * 0.7)
    scene.add_noise(level * 0.35, band(scene.freqs, *noise_band, 2.0), np.interp(scene.times, np.arange(n) / scene.rate, near))


def voices(scene: Scene, level: float, talkers: int) -> None:
    """People talking: voiced syllables (pulse train through moving formants) and hissy consonants."""
    rng, rate = scene.rng, scene.rate
    for _ in range(talkers):
        f_base = rng.uniform(95, 230)
        gain = level * rng.uniform(0.3, 1.0)
        t = rng.uniform(-1.0, 1.0)
        while t < scene.seconds:
            for _syllable in range(int(rng.integers(3, 12))):
                dur = rng.uniform(0.1, 0.28)
                n = int(dur * rate)
                f0 = (f_base * rng.uniform(0.9, 1.2) * np.linspace(1.05, 0.92, n)).astype(np.float32)
                peaks = ((rng.uniform(300, 850), 90.0, 1.0), (rng.uniform(900, 2300), 120.0, 0.6), (2700.0, 200.0, 0.3))
                voiced = formants(pulse_train(f0, rate), rate, peaks)
                voiced /= float(np.abs(voiced).max()) or 1.0
                scene.add(voiced * envelope(n, n // 5, n // 3), t, gain)
                if rng.random() < 0.4:
                    m = int(rng.uniform(0.03, 0.08) * rate)
                    hiss = formants(rng.standard_normal(m).astype(np.float32), rate,
                                    ((rng.uniform(3500, 6500), 2500.0, 0.3),))
                    hiss /= float(np.abs(hiss).max()) or 1.0
                    scene.add(hiss * envelope(m, m // 4, m // 4) * 0.3, t + dur, gain)
                t += dur + rng.uniform(0.02, 0.08)
            t += rng.uniform(0.3, 1.8)


def footsteps(scene: Scene, level: float) -> None:
    """Someone walking by: a step every 0.5 s, each a short dull knock."""
    rng, rate = scene.rng, scene.rate
    m = int(0.03 * rate)
    t = rng.uniform(-1, 2)
    stop = t + rng.uniform(2, 6)
    while t < min(stop, scene.seconds):
        step = resonate(rng.standard_normal(m).astype(np.float32), rate, rng.uniform(300, 1200), 600.0)
        scene.add(step * np.exp(-np.arange(m, dtype=np.float32) / (m / 5)), t, level * rng.uniform(0.5, 1.0))
        t += rng.uniform(0.47, 0.58)


def hum(scene: Scene, level: float) -> None:
    """Ventilation and transformers: mains harmonics (100-300 Hz) over fan noise."""
    n = scene.n
    scene.add(tone(np.full(n, 50.0, np.float32), scene.rate, (0.0, 1.0, 0.6, 0.5, 0.3, 0.25)) * 0.5, 0.0, level)
    scene.add_noise(level * 0.5, band(scene.freqs, 120.0, 1600.0, 2.0, peak=400.0))


def bell(scene: Scene, level: float) -> None:
    """A church bell striking every two seconds: inharmonic partials with long decays."""
    rng, rate = scene.rng, scene.rate
    f = rng.uniform(380, 650)
    n = int(3.0 * rate)
    t = np.arange(n, dtype=np.float32) / rate
    strike = sum(a * np.sin(2 * np.pi * f * r * t) * np.exp(-t / d) for r, a, d in (
        (0.5, 0.6, 2.5), (1.0, 1.0, 1.8), (1.183, 0.6, 1.2), (1.506, 0.4, 1.0), (2.0, 0.5, 0.8),
        (2.514, 0.3, 0.5), (3.011, 0.2, 0.4))).astype(np.float32) / 2.0
    start, gap = rng.uniform(-2, 0), rng.uniform(1.7, 2.4)
    while start < scene.seconds:
        scene.add(strike, start, level)
        start += gap


def dogs(scene: Scene, level: float) -> None:
    """Dogs barking: bursts of 1-4 barks, each a short harmonic yelp falling in pitch."""
    rng, rate = scene.rng, scene.rate
    for start in poisson_times(rng, 0.3, scene.seconds, lead=1.0):
        f0 = rng.uniform(350, 650)
        t = start
        for _ in range(int(rng.integers(1, 5))):
            n = int(rng.uniform(0.1, 0.2) * rate)
            f = np.linspace(f0 * 1.1, f0 * 0.8, n, dtype=np.float32)
            bark = tone(f, rate, (1.0, 0.8, 0.5, 0.35, 0.2)) + 0.3 * rng.standard_normal(n).astype(np.float32)
            scene.add(bark * envelope(n, n // 12, n // 2) * 0.4, t, level * rng.uniform(0.5, 1.0))
            t += rng.uniform(0.25, 0.45)
