"""Audio windows of a site's many hours (torch-free).

A site of a recorder campaign holds hours of audio in many files. Training does not make one pair per
file: a training sample is a random window of the site's audio (a file drawn with probability
proportional to its duration, then a uniform offset in it), so every second of the site is equally likely
and an epoch can draw several windows per site. Evaluation takes fixed windows instead: ``count`` windows
spread evenly over the site's whole recorded time (file order), each one chunk of the front-end long, and
embeds the site's sound as the mean of their embeddings (the front-end's chunk rule over their
concatenated log-mels). Windows are read with a seek (:func:`engine.audio.front_end.read_window`), never
by decoding a whole file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.audio import FrontEndConfig, samples_log_mel
from engine.audio.front_end import read_window
from engine.errors import DatasetError


@dataclass(frozen=True)
class SiteFile:
    """One recording of a site and its duration in seconds."""

    path: Path
    duration_s: float


@dataclass(frozen=True)
class Window:
    """``seconds`` of ``path`` from ``offset_s``."""

    path: Path
    offset_s: float
    seconds: float


def _durations(files: Sequence[SiteFile], site: str) -> np.ndarray:
    durations = np.array([max(0.0, f.duration_s) for f in files], dtype=np.float64)
    if not len(files) or durations.sum() <= 0:
        raise DatasetError(site, "has no audio to draw windows from", "check the site's files in recordings.csv")
    return durations


def draw_window(files: Sequence[SiteFile], seconds: float, rng: np.random.Generator, site: str = "site") -> Window:
    """A random window: a file drawn by duration, then a uniform offset (0 for a file shorter than it)."""
    durations = _durations(files, site)
    k = int(rng.choice(len(files), p=durations / durations.sum()))
    latest = max(0.0, durations[k] - seconds)
    return Window(files[k].path, float(rng.uniform(0.0, latest)) if latest > 0 else 0.0, seconds)


def fixed_windows(files: Sequence[SiteFile], seconds: float, count: int, site: str = "site") -> list[Window]:
    """``count`` windows centred at evenly spaced points of the site's concatenated recording time.

    The k-th window is centred at ``(k + 0.5) / count`` of the total duration (files in the given order),
    and kept inside its file.
    """
    durations = _durations(files, site)
    ends = np.cumsum(durations)
    out = []
    for k in range(max(1, count)):
        centre = (k + 0.5) / max(1, count) * ends[-1]
        i = min(int(np.searchsorted(ends, centre, side="right")), len(files) - 1)
        local = centre - (ends[i] - durations[i])
        offset = float(np.clip(local - seconds / 2, 0.0, max(0.0, durations[i] - seconds)))
        out.append(Window(files[i].path, offset, seconds))
    return out


def window_samples(window: Window, sample_rate: int, quality: str = "HQ") -> np.ndarray:
    """The window's mono samples at ``sample_rate`` (only the window is decoded)."""
    return read_window(window.path, window.offset_s, window.seconds, sample_rate, quality)


def window_log_mel(window: Window, cfg: FrontEndConfig) -> np.ndarray:
    """The window's normalised log-mel, (n_mels, T) float32 (normalised by the window's own statistics,
    like any clip).

    Raises:
        AudioFileError: an unreadable file or a window shorter than the front-end's minimum.
    """
    samples = window_samples(window, cfg.sample_rate, cfg.resample_quality)
    return samples_log_mel(samples, cfg.sample_rate, cfg, source=f"{window.path} at {window.offset_s:.1f} s")


def windows_log_mel(windows: Sequence[Window], cfg: FrontEndConfig) -> np.ndarray:
    """The log-mels of several windows side by side, each cut or repeated to exactly one chunk, so that the
    front-end's chunk rule (with ``chunk_hop_seconds == chunk_seconds``) embeds each window as one chunk and
    averages them."""
    frames = cfg.chunk_frames
    parts = []
    for window in windows:
        mel = window_log_mel(window, cfg)
        if mel.shape[1] < frames:
            mel = np.tile(mel, (1, -(-frames // mel.shape[1])))
        parts.append(mel[:, :frames])
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)
