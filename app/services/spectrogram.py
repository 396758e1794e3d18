"""What the spectrogram views draw: a clip's log-mel in dB and the frequency of each mel band."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.audio import FrontEndConfig, StreamingLogMel, iter_audio_blocks
from engine.progress import Job

# Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0

DISPLAY_MAX_SECONDS = 120.0


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Hz -> Slaney mel."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-12) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Slaney mel -> Hz (the inverse of :func:`hz_to_mel`)."""
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), _F_SP * mel)


def mel_band_edges_hz(cfg: FrontEndConfig) -> np.ndarray:
    """The n_mels + 1 frequencies (Hz) at which a spectrogram image's rows start and end.

    Band k of the filterbank peaks at point k + 1 of n_mels + 2 points equally spaced in mel from
    f_min to f_max; a row is drawn from the midpoint to its lower neighbour to the midpoint to its
    upper one (the first and last rows end at f_min and f_max).
    """
    points = np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2)
    centres = points[1:-1]
    edges = np.concatenate([[points[0]], (centres[:-1] + centres[1:]) / 2, [points[-1]]])
    return mel_to_hz(edges)


def mel_band_centres_hz(cfg: FrontEndConfig) -> np.ndarray:
    """The centre frequency (Hz) of each of the n_mels bands."""
    return mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2)[1:-1])


def file_spectrogram(path: str | Path, cfg: FrontEndConfig, max_seconds: float = DISPLAY_MAX_SECONDS,
                     job: Job | None = None) -> tuple[np.ndarray, float]:
    """The log-mel (dB, not normalised) of the first ``max_seconds`` of a file, for display.

    Returns:
        ((n_mels, T) float32, seconds shown).
    Raises:
        AudioFileError: the file cannot be read.
    """
    stream = StreamingLogMel(cfg)
    limit = int(max_seconds * cfg.sample_rate)
    parts, seen = [], 0
    for block in iter_audio_blocks(path, cfg.sample_rate, block_seconds=10.0, quality="MQ"):
        if job is not None:
            job.check()
        block = block[: limit - seen]
        parts.append(stream.push(block))
        seen += block.size
        if seen >= limit:
            break
    parts.append(stream.finish())
    return np.concatenate(parts, axis=1), seen / cfg.sample_rate
