"""Bird calls: ten call types (whistles, trills, chirps, warbles, two-note songs, coos, caws, gull
calls, quacks and woodpecker drumming) and the species of each habitat, drawn per world."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.demo_world.dsp import envelope, resonate, sawtooth, tone


@dataclass(frozen=True)
class Species:
    """A bird: its call type and the pitch, note length and song rate it uses."""

    call: str
    low_hz: float
    high_hz: float
    note_s: float
    notes: tuple[int, int]
    songs_per_s: float
    level_db: float = 0.0


def _sweep(rng: np.random.Generator, f0: float, f1: float, seconds: float, rate: int,
           harmonics: tuple[float, ...] = (1.0, 0.12), vibrato: float = 0.0) -> np.ndarray:
    n = max(8, int(seconds * rate))
    t = np.linspace(0, 1, n, dtype=np.float32)
    freq = f0 + (f1 - f0) * t
    if vibrato:
        freq = freq * (1 + vibrato * np.sin(2 * np.pi * rng.uniform(6, 11) * t * seconds))
    return tone(freq, rate, harmonics) * envelope(n, n // 5, n // 3)


def _join(parts: list[np.ndarray], gaps: list[float], rate: int) -> np.ndarray:
    out = []
    for part, gap in zip(parts, gaps, strict=True):
        out += [part, np.zeros(int(gap * rate), np.float32)]
    return np.concatenate(out) if out else np.zeros(1, np.float32)


def song(rng: np.random.Generator, sp: Species, rate: int) -> np.ndarray:
    """One song (a phrase of notes) of species ``sp``, peak amplitude about 1."""
    n_notes = int(rng.integers(sp.notes[0], sp.notes[1] + 1))
    lo, hi = sp.low_hz, sp.high_hz
    ns = sp.note_s * rng.uniform(0.85, 1.15)
    parts: list[np.ndarray] = []
    gaps: list[float] = []
    if sp.call == "whistle":
        for _ in range(n_notes):
            a, b = rng.uniform(lo, hi, 2)
            parts.append(_sweep(rng, a, b, ns * rng.uniform(0.7, 1.3), rate, (1.0, 0.15), 0.02))
            gaps.append(rng.uniform(0.08, 0.25))
    elif sp.call == "trill":
        for _ in range(n_notes):
            parts.append(_sweep(rng, hi, lo, ns, rate, (1.0, 0.1)))
            gaps.append(ns * 0.4)
    elif sp.call == "chirps":
        for _ in range(n_notes):
            parts.append(_sweep(rng, hi * rng.uniform(0.95, 1.05), lo, ns, rate, (1.0, 0.3, 0.1)))
            gaps.append(rng.uniform(0.12, 0.3))
    elif sp.call == "warble":
        seconds = ns * n_notes
        n = int(seconds * rate)
        knots = np.linspace(0, n, max(3, int(seconds / 0.06)))
        freq = np.interp(np.arange(n), knots, rng.uniform(lo, hi, knots.size)).astype(np.float32)
        flutter = 0.6 + 0.4 * np.interp(np.arange(n), knots, rng.random(knots.size)).astype(np.float32)
        parts.append(tone(freq, rate, (1.0, 0.2)) * flutter * envelope(n, n // 20, n // 10))
        gaps.append(0.0)
    elif sp.call == "two_note":
        for _ in range(n_notes):
            parts += [_sweep(rng, hi, hi * 0.97, ns, rate), _sweep(rng, lo, lo * 0.95, ns, rate)]
            gaps += [0.03, rng.uniform(0.08, 0.15)]
    elif sp.call == "coo":
        for i in range(n_notes):
            f = lo * (1.15 if i == 1 else 1.0)
            parts.append(_sweep(rng, f, f * 0.92, ns, rate, (1.0, 0.35, 0.12)))
            gaps.append(rng.uniform(0.1, 0.2))
    elif sp.call in ("caw", "quack"):
        formant = hi
        for i in range(n_notes):
            n = int(ns * rate * rng.uniform(0.85, 1.15))
            f0 = lo * (1 - 0.04 * i) * np.linspace(1.05, 0.92, n, dtype=np.float32)
            rough = 1 + 0.5 * rng.standard_normal(n).astype(np.float32) * (sp.call == "caw")
            x = resonate(sawtooth(f0, rate) * rough, rate, formant, formant * 0.5) * 3.0
            parts.append(x * envelope(n, n // 8, n // 3))
            gaps.append(rng.uniform(0.12, 0.3))
    elif sp.call == "gull":
        for i in range(n_notes):
            n = int(ns * rate * (1 - 0.06 * i))
            t = np.linspace(0, 1, n, dtype=np.float32)
            f = lo + (hi - lo) * np.sin(np.pi * np.clip(t * 1.4, 0, 1)) * (1 - 0.3 * t)
            parts.append(tone(f, rate, (1.0, 0.6, 0.4, 0.25)) * envelope(n, n // 6, n // 3) * 0.6)
            gaps.append(max(0.05, 0.22 - 0.03 * i))
    elif sp.call == "drum":
        knock = int(0.012 * rate)
        t = np.arange(knock) / rate
        hit = (np.sin(2 * np.pi * rng.uniform(lo, hi) * t) * np.exp(-t * 400)).astype(np.float32)
        gap = 1.0 / rng.uniform(14, 22) - knock / rate
        for i in range(n_notes):
            parts.append(hit * (1 - 0.5 * i / n_notes))
            gaps.append(gap)
    else:  # pragma: no cover - the species table only uses the types above
        raise ValueError(sp.call)
    out = _join(parts, gaps, rate)
    peak = float(np.abs(out).max()) or 1.0
    return out / peak


def world_species(rng: np.random.Generator) -> dict[str, tuple[Species, ...]]:
    """The birds of each habitat in one world; pitches and tempos vary from world to world."""
    def u(a: float, b: float) -> float:
        return float(rng.uniform(a, b))

    return {
        "forest_broadleaf": (
            Species("warble", u(2200, 2800), u(4200, 5200), 0.35, (5, 9), 0.35),
            Species("whistle", u(1800, 2400), u(2800, 3600), 0.3, (2, 4), 0.3),
            Species("trill", u(3500, 4200), u(6000, 7500), 0.035, (8, 16), 0.25),
            Species("drum", 900, 1500, 0.01, (12, 22), 0.06, -4),
        ),
        "forest_conifer": (
            Species("two_note", u(3800, 4500), u(5500, 6800), 0.1, (3, 6), 0.35),
            Species("chirps", u(4000, 5000), u(7000, 8500), 0.05, (3, 6), 0.3),
            Species("coo", u(480, 620), u(700, 800), 0.4, (3, 5), 0.1, -2),
            Species("drum", 700, 1200, 0.01, (15, 25), 0.08, -4),
        ),
        "cereal": (
            Species("warble", u(2800, 3400), u(5200, 6400), 0.4, (6, 10), 0.45, -2),  # skylark overhead
            Species("two_note", u(1800, 2300), u(2600, 3100), 0.08, (2, 3), 0.12, -6),  # quail
        ),
        "maize": (Species("chirps", u(3200, 3900), u(5200, 6200), 0.07, (2, 4), 0.12, -6),),
        "rapeseed": (
            Species("chirps", u(4200, 5000), u(6500, 7500), 0.05, (5, 8), 0.2, -3),  # yellowhammer
            Species("warble", u(2800, 3400), u(5200, 6400), 0.4, (4, 8), 0.2, -4),
        ),
        "bare_field": (
            Species("whistle", u(1500, 1900), u(2600, 3200), 0.18, (2, 3), 0.2),    # lapwing
            Species("caw", u(450, 600), u(1200, 1600), 0.3, (2, 4), 0.15),         # crows
        ),
        "pasture": (Species("chirps", u(5000, 6000), u(7500, 8800), 0.04, (2, 4), 0.2, -4),),  # wagtail
        "meadow": (
            Species("chirps", u(3000, 3800), u(5500, 6500), 0.06, (2, 5), 0.15, -4),
            Species("whistle", u(2600, 3200), u(3600, 4400), 0.2, (2, 3), 0.08, -6),
        ),
        "wetland": (
            Species("quack", u(220, 300), u(900, 1300), 0.18, (3, 5), 0.12),
            Species("chirps", u(2500, 3200), u(4500, 5500), 0.05, (6, 12), 0.25, -2),  # reed warbler
        ),
        "lake": (Species("quack", u(230, 320), u(900, 1300), 0.16, (2, 5), 0.15),),
        "urban": (
            Species("chirps", u(3200, 3900), u(5200, 6200), 0.07, (2, 4), 0.3, -4),  # sparrows
            Species("coo", u(380, 460), u(500, 560), 0.35, (3, 5), 0.1, -4),        # pigeons
        ),
        "coast": (Species("gull", u(900, 1100), u(1500, 1900), 0.3, (3, 6), 0.12),),
    }
