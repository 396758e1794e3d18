"""Small signal-processing kit for the sound sources: a scene that collects noise as a time-frequency
power map (synthesised in one inverse STFT) and tonal events as waveforms, plus oscillators,
envelopes and spectral shapes.

Noise-like sources (wind, surf, water, traffic) only need the right power in each band and frame:
summing their power maps and synthesising once with random phases is much cheaper than filtering
each source. The front-end's frames are 23 ms apart, finer than any modulation the noise carries.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft

NOISE_FFT = 512
NOISE_HOP = 256


def _sine_window(n: int) -> np.ndarray:
    # Its square overlap-adds to one at 50 % overlap, so noise power stays level between frames.
    return np.sin(np.pi * (np.arange(n) + 0.5) / n).astype(np.float32)


class Scene:
    """Accumulates a clip: ``add_noise`` for noise power, ``add`` for waveforms, then ``render``."""

    def __init__(self, rng: np.random.Generator, seconds: float, rate: int) -> None:
        self.rng = rng
        self.rate = rate
        self.n = int(round(seconds * rate))
        self.frames = self.n // NOISE_HOP + 2
        self.freqs = np.fft.rfftfreq(NOISE_FFT, 1.0 / rate).astype(np.float32)
        self.times = (np.arange(self.frames) * NOISE_HOP / rate).astype(np.float32)
        self.power = np.zeros((self.frames, self.freqs.size), np.float32)
        self.wave = np.zeros(self.n, np.float32)

    @property
    def seconds(self) -> float:
        return self.n / self.rate

    def add_noise(self, level: float, shape: np.ndarray, envelope: np.ndarray | float = 1.0) -> None:
        """Noise of RMS ``level * envelope`` with the magnitude spectrum ``shape`` (see :func:`band`)."""
        env = np.broadcast_to(np.asarray(envelope, np.float32), (self.frames,))
        self.power += np.outer((level * env) ** 2, shape ** 2)

    def add(self, x: np.ndarray, start: float, gain: float = 1.0) -> None:
        """Add waveform ``x`` starting at ``start`` seconds (clipped to the clip)."""
        i0 = int(round(start * self.rate))
        a, b = max(0, i0), min(self.n, i0 + x.size)
        if a < b:
            self.wave[a:b] += np.float32(gain) * x[a - i0:b - i0]

    def render(self) -> np.ndarray:
        """The clip: noise synthesised from the power map plus the waveforms (float32)."""
        if not self.power.any():
            return self.wave.copy()
        F = self.freqs.size
        mag = np.sqrt(self.power) * np.float32(NOISE_FFT / 2)  # irfft scale: the RMS comes out right
        spec = self.rng.standard_normal((self.frames, F, 2), np.float32).view(np.complex64)[..., 0]
        spec *= mag
        frames = sp_fft.irfft(spec, n=NOISE_FFT, axis=1).astype(np.float32) * _sine_window(NOISE_FFT)
        half = NOISE_HOP
        out = np.zeros((self.frames + 1) * half, np.float32)
        out[:self.frames * half].reshape(self.frames, half)[:] += frames[:, :half]
        out[half:(self.frames + 1) * half].reshape(self.frames, half)[:] += frames[:, half:]
        # Frame k is centred on sample k*hop + hop: shift so the power map lines up with ``times``.
        return out[half:half + self.n] + self.wave


def band(freqs: np.ndarray, low: float, high: float, order: float = 2.0, tilt_db_per_octave: float = 0.0,
         peak: float | None = None, peak_q: float = 1.0) -> np.ndarray:
    """A smooth band-pass magnitude response, normalised to unit power (so a level is an RMS)."""
    f = np.maximum(freqs, 1.0)
    m = 1.0 / np.sqrt(1 + (low / f) ** (2 * order)) / np.sqrt(1 + (f / high) ** (2 * order))
    if tilt_db_per_octave:
        m = m * (f / np.sqrt(low * high)) ** (tilt_db_per_octave / 6.02)
    if peak is not None:
        m = m * (1 + 3.0 * np.exp(-0.5 * (np.log2(f / peak) * 2 * peak_q) ** 2))
    m[0] = 0.0
    return (m / np.sqrt(np.sum(m ** 2))).astype(np.float32)


def smooth_random(rng: np.random.Generator, times: np.ndarray, rate_hz: float) -> np.ndarray:
    """A smooth random curve in [0, 1] changing about ``rate_hz`` times a second, sampled at ``times``."""
    span = float(times[-1]) if len(times) else 0.0
    knots = np.arange(-1, int(span * rate_hz) + 3) / rate_hz
    values = rng.random(knots.size)
    return np.interp(times, knots, values).astype(np.float32)


def gusts(rng: np.random.Generator, times: np.ndarray, strength: float) -> np.ndarray:
    """Wind gust envelope: slow swells and lulls, stronger and faster with ``strength`` in [0, 1]."""
    slow = smooth_random(rng, times, 0.25 + 0.3 * strength)
    fast = smooth_random(rng, times, 1.5)
    return (0.25 + strength * (0.6 * slow ** 1.5 + 0.3 * fast)).astype(np.float32)


def envelope(n: int, attack: int, release: int) -> np.ndarray:
    """Raised-cosine attack and release over ``n`` samples."""
    env = np.ones(n, np.float32)
    a, r = min(attack, n // 2), min(release, n // 2)
    if a:
        env[:a] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, a, endpoint=False, dtype=np.float32))
    if r:
        env[n - r:] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, r, endpoint=False, dtype=np.float32))
    return env


def tone(freq: np.ndarray, rate: int, harmonics: tuple[float, ...] = (1.0,), phase: float = 0.0) -> np.ndarray:
    """A tone following the per-sample frequency track ``freq`` (Hz), with harmonic amplitudes.

    Harmonics come from the Chebyshev recurrence sin(k x) = 2 cos(x) sin((k-1) x) - sin((k-2) x),
    one sine and one cosine however many harmonics.
    """
    cycles = np.cumsum(np.asarray(freq, np.float32) / np.float32(rate))
    ph = np.float32(2 * np.pi) * (cycles - np.floor(cycles)) + np.float32(phase)
    s1 = np.sin(ph)
    out = harmonics[0] * s1 if harmonics[0] else np.zeros_like(s1)
    if len(harmonics) > 1:
        c2 = 2 * np.cos(ph)
        prev, cur = np.zeros_like(s1), s1
        for amp in harmonics[1:]:
            prev, cur = cur, c2 * cur - prev
            if amp:
                out += np.float32(amp) * cur
    return out.astype(np.float32, copy=False)


def sawtooth(freq: np.ndarray, rate: int) -> np.ndarray:
    """A sawtooth in [-1, 1] following ``freq``: all harmonics at 1/k, e.g. for engines."""
    ph = np.cumsum(np.asarray(freq, np.float32) / np.float32(rate))
    return 2 * (ph - np.floor(ph)) - 1


def pulse_train(freq: np.ndarray, rate: int) -> np.ndarray:
    """Unit impulses wherever the phase of ``freq`` wraps (a glottal or firing-rate excitation)."""
    ph = np.cumsum(np.asarray(freq, np.float32) / np.float32(rate))
    return np.diff(np.floor(ph), prepend=np.float32(0.0))


def resonate(x: np.ndarray, rate: int, centre: float, bandwidth: float) -> np.ndarray:
    """Two-pole resonator (a formant or a body resonance)."""
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bandwidth / rate)
    theta = 2 * np.pi * centre / rate
    return lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x).astype(np.float32)


def poisson_times(rng: np.random.Generator, rate_per_s: float, seconds: float, lead: float = 0.0) -> np.ndarray:
    """Event onsets of a Poisson process over [-lead, seconds)."""
    span = seconds + lead
    count = rng.poisson(max(0.0, rate_per_s) * span)
    return np.sort(rng.uniform(-lead, seconds, count))


def formants(x: np.ndarray, rate: int, peaks: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    """Filter a short excitation through resonances (centre Hz, bandwidth Hz, gain) in one FFT."""
    n = sp_fft.next_fast_len(x.size, real=True)
    f = np.fft.rfftfreq(n, 1.0 / rate).astype(np.float32)
    response = sum(g / (1 + ((f - c) / (bw / 2)) ** 2) for c, bw, g in peaks)
    return sp_fft.irfft(sp_fft.rfft(x, n) * response, n)[:x.size].astype(np.float32)
