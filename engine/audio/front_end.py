"""The audio front-end: decode, mono, resample, log-mel, normalise, chunk.

One definition for the engine and the app, torch-free (numpy, scipy.fft, soundfile, soxr; the mel
filterbank is librosa's Slaney definition, computed here so the front-end does not import librosa). Every parameter that changes the numbers lives in :class:`FrontEndConfig`, which a
model bundle records (defined in :mod:`engine.config.front_end`), so a clip is always embedded the way the encoder was trained.

The log-mel is computed in a streaming fashion (:class:`StreamingLogMel`) so hour-long files are
processed in blocks; the same class feeds the app's live spectrogram while recording.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy import fft as sp_fft

from engine.config.front_end import FrontEndConfig
from engine.errors import AudioFileError

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
# Formats whose header states the exact frame count, so a short read means a truncated file.
_EXACT_LENGTH_FORMATS = {"WAV", "WAVEX", "FLAC", "AIFF", "RF64", "W64"}
_BLOCK_SECONDS = 30.0
# Decoded samples lie within [-1, 1]; float files may go a little past full scale, but samples beyond
# this (60 dB over full scale) are not audio: powers of ~1e17 overflow float32 and the log-mel turns
# to NaN. Such a file is refused, naming where, instead of giving a NaN embedding.
MAX_SAMPLE_MAGNITUDE = 1e3
# Bytes per sample of the PCM/float subtypes, to turn a WAV header's data size into seconds.
_SUBTYPE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                  "ULAW": 1, "ALAW": 1}


# The ``soundingearth_exp`` normalisation (engine.config.front_end.NORMALISATIONS) clips dB to this range.
SOUNDINGEARTH_CLIP_DB = (-15.0, 5.0)


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


# ----------------------------------------------------------------------------------------- decoding

def _check_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise AudioFileError(path, f"unsupported extension '{path.suffix or '(none)'}'",
                             "use a WAV, FLAC, OGG or MP3 file")
    if not path.exists():
        raise AudioFileError(path, "file not found", "check the path")
    if path.is_dir():
        raise AudioFileError(path, "is a folder, not an audio file", "name an audio file inside it")
    if path.stat().st_size == 0:
        raise AudioFileError(path, "file is empty (0 bytes)", "re-copy or re-export the recording")
    return path


_WAV_DATA_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _open(path: Path) -> sf.SoundFile:
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioFileError(path, f"not a readable audio file ({_short(err)})",
                             "convert it to WAV or FLAC, or check that it is not truncated") from None
    # libsndfile quietly shortens a WAV whose data chunk runs past the end of the file; its log
    # says so ("data : N (should be M)"), which is how a truncated copy is told apart.
    if f.format in ("WAV", "WAVEX", "RF64"):
        match = _WAV_DATA_SIZE.search(f.extra_info)
        if match and int(match.group(2)) < int(match.group(1)):
            declared = int(match.group(1))
            frame_bytes = f.channels * _SUBTYPE_BYTES.get(f.subtype, 0)
            promised = declared / (frame_bytes * f.samplerate) if frame_bytes and f.samplerate else None
            held = f.frames / f.samplerate if f.samplerate else 0.0
            f.close()
            promise = f"{promised:.2f} s" if promised is not None else f"{declared} bytes"
            holds = f"only {held:.2f} s" if f.frames else "no samples"
            raise AudioFileError(path, f"truncated: the header promises {promise} but the file holds {holds}",
                                 "re-copy or re-export the file")
    return f


def _short(err: BaseException) -> str:
    return str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__


def check_samples(samples: np.ndarray, source: str | Path, offset: int = 0, rate: int | None = None) -> None:
    """Refuse samples that are not audio: NaN/inf, or far beyond full scale (:data:`MAX_SAMPLE_MAGNITUDE`).

    Args:
        samples: (n,) or (n, channels) decoded samples.
        source: the file (or "recording") named in the message.
        offset: the index of the first of ``samples`` in the whole clip, to say where the fault is.
        rate: the sample rate, to say it in seconds (without it, as a sample number).

    Raises:
        AudioFileError: naming the source, the time of the first bad sample and the fix.
    """
    magnitude = np.abs(samples)
    peak = float(magnitude.max()) if magnitude.size else 0.0  # NaN if any sample is NaN
    if np.isfinite(peak) and peak <= MAX_SAMPLE_MAGNITUDE:
        return
    bad = ~(magnitude <= MAX_SAMPLE_MAGNITUDE)  # NaN compares False, so it counts as bad
    first = int(np.argmax(bad.reshape(bad.shape[0], -1).any(axis=1)))
    at = f"{(offset + first) / rate:.2f} s" if rate else f"sample {offset + first}"
    if not np.isfinite(magnitude[first]).all():
        raise AudioFileError(source, f"contains NaN or infinite samples from {at}",
                             "re-export the recording as 16- or 24-bit PCM")
    worst = float(np.nanmax(np.where(np.isfinite(magnitude), magnitude, 0.0)))
    raise AudioFileError(source, f"samples out of range from {at} (magnitude up to {worst:.3g}; audio lies within "
                         "-1..1): the file is not valid audio", "re-export it as 16- or 24-bit PCM")


def probe_audio(path: str | Path) -> AudioInfo:
    """Read an audio file's header. Raises :class:`AudioFileError` naming the file and the fix."""
    path = _check_path(path)
    with _open(path) as f:
        return AudioInfo(path, int(f.samplerate), int(f.channels), int(f.frames), str(f.format))


def iter_audio_blocks(path: str | Path, sample_rate: int | None = None,
                      block_seconds: float = _BLOCK_SECONDS,
                      quality: str = "HQ") -> Iterator[np.ndarray]:
    """Yield the file as mono float32 blocks, resampled to ``sample_rate`` (native rate if None).

    Only one block is in memory at a time, so hour-long files need little RAM. Multichannel audio is
    mixed to mono by averaging the channels.

    Raises:
        AudioFileError: missing, empty, unsupported, corrupt or truncated file, NaN/inf samples.
    """
    path = _check_path(path)
    with _open(path) as f:
        in_rate = int(f.samplerate)
        expected = int(f.frames)
        exact = str(f.format) in _EXACT_LENGTH_FORMATS
        out_rate = in_rate if sample_rate is None else int(sample_rate)
        stream = None if out_rate == in_rate else soxr.ResampleStream(
            in_rate, out_rate, 1, dtype="float32", quality=quality)
        block_frames = max(1024, int(block_seconds * in_rate))
        seen = 0
        try:
            while True:
                data = f.read(block_frames, dtype="float32", always_2d=True)
                n = data.shape[0]
                last = n < block_frames
                if n:
                    check_samples(data, path, seen, in_rate)
                    seen += n
                    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
                    mono = np.ascontiguousarray(mono, dtype=np.float32)
                    out = mono if stream is None else stream.resample_chunk(mono, last=last)
                    if out.size:
                        yield out
                elif stream is not None:
                    tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)
                    if tail.size:
                        yield tail
                if last:
                    break
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioFileError(path, f"decoding failed at {seen / in_rate:.1f} s ({_short(err)})",
                                 "the file is truncated or corrupt; re-copy or re-export it") from None
        if exact and seen < expected:
            raise AudioFileError(path, f"truncated: the header promises {expected / in_rate:.2f} s but only "
                                 f"{seen / in_rate:.2f} s can be read", "re-copy or re-export the file")


def load_audio(path: str | Path, sample_rate: int | None = None,
               quality: str = "HQ") -> tuple[np.ndarray, int]:
    """Decode a whole file to mono float32, resampled to ``sample_rate`` if given.

    Returns:
        (samples, rate). A file of digital silence is returned as zeros (not an error).
    Raises:
        AudioFileError: see :func:`iter_audio_blocks`.
    """
    info = probe_audio(path)
    rate = info.sample_rate if sample_rate is None else int(sample_rate)
    blocks = list(iter_audio_blocks(path, rate, quality=quality))
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return samples, rate


def read_window(path: str | Path, start_seconds: float, seconds: float, sample_rate: int | None = None,
                quality: str = "HQ") -> np.ndarray:
    """Mono float32 samples of ``[start_seconds, start_seconds + seconds)`` of a file, resampled to
    ``sample_rate`` (native rate if None). Seeks to the start, so only the window is decoded, however long
    the file; a window running past the end is cut short there.

    Raises:
        AudioFileError: see :func:`iter_audio_blocks`; also a start beyond the file's end.
    """
    path = _check_path(path)
    with _open(path) as f:
        in_rate = int(f.samplerate)
        start = int(round(max(0.0, start_seconds) * in_rate))
        if start >= f.frames:
            raise AudioFileError(path, f"window at {start_seconds:.1f} s starts after the end "
                                 f"({f.frames / in_rate:.1f} s)", "the campaign table is stale; scan it again")
        try:
            f.seek(start)
            data = f.read(int(round(seconds * in_rate)), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioFileError(path, f"decoding failed at {start_seconds:.1f} s ({_short(err)})",
                                 "the file is truncated or corrupt; re-copy or re-export it") from None
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioFileError(path, f"contains NaN or infinite samples near {start_seconds:.1f} s",
                             "re-export the recording as 16- or 24-bit PCM")
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    return mono if sample_rate is None else resample(mono, in_rate, int(sample_rate), quality)


def resample(samples: np.ndarray, orig_rate: int, target_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample a mono signal with soxr (the library librosa also uses by default)."""
    samples = np.asarray(samples, dtype=np.float32)
    if orig_rate == target_rate:
        return samples
    return soxr.resample(samples, orig_rate, target_rate, quality=quality).astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------------ log-mel

def _hz_to_slaney_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), (200.0 / 3) * mel)


@lru_cache(maxsize=8)
def mel_filterbank(cfg: FrontEndConfig) -> np.ndarray:
    """The (n_mels, 1 + n_fft/2) Slaney mel filterbank with Slaney (area) normalisation.

    The same matrix as ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` (a test holds it to
    librosa); built here because importing librosa would add its memory and start-up time to every process.
    """
    fft_hz = np.fft.rfftfreq(cfg.n_fft, d=1.0 / cfg.sample_rate)
    edges_hz = _slaney_mel_to_hz(np.linspace(_hz_to_slaney_mel(cfg.f_min), _hz_to_slaney_mel(cfg.f_max),
                                             cfg.n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]  # each band integrates to the same area
    return weights.astype(np.float32)


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    """The periodic Hann window (``scipy.signal.get_window("hann", n, fftbins=True)``)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


class StreamingLogMel:
    """Turns a stream of mono samples at ``cfg.sample_rate`` into log-mel frames (dB).

    Frames are those of a centred STFT with zero padding (librosa's ``center=True,
    pad_mode="constant"``): frame k covers samples [k*hop - n_fft/2, k*hop + n_fft/2).
    """

    def __init__(self, cfg: FrontEndConfig) -> None:
        self.cfg = cfg
        self._fb = mel_filterbank(cfg)
        self._win = _window(cfg.n_fft)
        self._buf = np.zeros(cfg.n_fft // 2, np.float32)  # the centre padding at the start
        self._samples_in = 0
        self._frames_out = 0
        self._finished = False

    def _frames(self, buf: np.ndarray, count: int) -> np.ndarray:
        cfg = self.cfg
        if count <= 0:
            return np.zeros((cfg.n_mels, 0), np.float32)
        view = np.lib.stride_tricks.sliding_window_view(buf, cfg.n_fft)[::cfg.hop_length][:count]
        spec = sp_fft.rfft(view * self._win, axis=-1)
        power = spec.real.astype(np.float32) ** 2 + spec.imag.astype(np.float32) ** 2
        mel = power @ self._fb.T
        db = 10.0 * np.log10(np.maximum(mel, 10.0 ** (cfg.db_floor / 10.0)))
        return np.ascontiguousarray(db.T, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples; return the (n_mels, k) frames that became complete."""
        if self._finished:
            raise RuntimeError("push() after finish()")
        samples = np.asarray(samples, dtype=np.float32).ravel()
        self._samples_in += samples.size
        self._buf = np.concatenate([self._buf, samples])
        hop, n_fft = self.cfg.hop_length, self.cfg.n_fft
        count = 0 if self._buf.size < n_fft else 1 + (self._buf.size - n_fft) // hop
        out = self._frames(self._buf, count)
        self._buf = self._buf[count * hop:]
        self._frames_out += count
        return out

    def finish(self) -> np.ndarray:
        """Flush the end padding; return the last frames (total = 1 + samples // hop)."""
        if self._finished:
            return np.zeros((self.cfg.n_mels, 0), np.float32)
        self._finished = True
        hop, n_fft = self.cfg.hop_length, self.cfg.n_fft
        total = 1 + self._samples_in // hop
        remaining = total - self._frames_out
        buf = np.concatenate([self._buf, np.zeros(n_fft // 2 + n_fft, np.float32)])
        return self._frames(buf, remaining)


def log_mel_db(samples: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """Log-mel power in dB, shape (n_mels, 1 + len // hop), of mono samples at ``cfg.sample_rate``."""
    stream = StreamingLogMel(cfg)
    head = stream.push(samples)
    return np.concatenate([head, stream.finish()], axis=1)


def _column_stats(log_mel: np.ndarray, columns: int = 8192) -> tuple[float, float]:
    """Mean and standard deviation in float64, a slab of columns at a time (no full-size temporaries)."""
    n = log_mel.size
    if n == 0:
        return 0.0, 0.0
    total = sum(float(log_mel[:, a:a + columns].sum(dtype=np.float64))
                for a in range(0, log_mel.shape[1], columns))
    mean = total / n
    squares = 0.0
    for a in range(0, log_mel.shape[1], columns):
        slab = log_mel[:, a:a + columns].astype(np.float64) - mean
        squares += float(np.einsum("ij,ij->", slab, slab))
    return mean, (squares / n) ** 0.5


def _normalise_in_place(log_mel: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    if cfg.normalisation == "none":
        return log_mel
    if cfg.normalisation == "soundingearth_exp":
        np.clip(log_mel, *SOUNDINGEARTH_CLIP_DB, out=log_mel)
        log_mel *= np.float32(0.1)
        return np.exp(log_mel, out=log_mel)
    mean, std = _column_stats(log_mel)
    log_mel -= np.float32(mean)
    log_mel /= np.float32(max(std, cfg.std_floor_db))
    return log_mel


def normalise(log_mel: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """The normalisation the encoder sees (``cfg.normalisation``): by default each clip standardised by its
    own mean and std (dB); ``soundingearth_exp`` maps each value alone (no per-clip statistics).

    A clip of digital silence has zero spread and becomes all zeros (a defined result, no NaN).
    Returns a new float32 array; the input is not modified.
    """
    return _normalise_in_place(np.array(log_mel, dtype=np.float32, copy=True), cfg)


class _FrameBuffer:
    """Log-mel frames appended block by block into one preallocated array (grown if needed), so a
    long file's spectrogram is never held twice (a list of parts plus their concatenation)."""

    def __init__(self, n_mels: int, capacity: int) -> None:
        self._data = np.empty((n_mels, max(1, capacity)), np.float32)
        self._used = 0

    def append(self, frames: np.ndarray) -> None:
        k = frames.shape[1]
        if self._used + k > self._data.shape[1]:
            grown = np.empty((self._data.shape[0], max(2 * self._data.shape[1], self._used + k)), np.float32)
            grown[:, :self._used] = self._data[:, :self._used]
            self._data = grown
        self._data[:, self._used:self._used + k] = frames
        self._used += k

    def array(self) -> np.ndarray:
        return self._data[:, :self._used]


def file_log_mel(path: str | Path, cfg: FrontEndConfig, normalised: bool = True) -> np.ndarray:
    """Stream a file of any length through the front-end. Returns (n_mels, T) float32.

    Memory: one decoding block plus the output spectrogram, which is normalised in place.

    Raises:
        AudioFileError: unreadable file (see :func:`iter_audio_blocks`) or a clip shorter than
            ``cfg.min_seconds``.
    """
    info = probe_audio(path)
    expected = 1 + int(info.frames * cfg.sample_rate / max(1, info.sample_rate)) // cfg.hop_length
    frames = _FrameBuffer(cfg.n_mels, expected + 8)
    stream = StreamingLogMel(cfg)
    for block in iter_audio_blocks(path, cfg.sample_rate, quality=cfg.resample_quality):
        frames.append(stream.push(block))
    frames.append(stream.finish())
    duration = stream._samples_in / cfg.sample_rate
    if duration < cfg.min_seconds:
        raise AudioFileError(path, f"clip too short ({duration:.2f} s)",
                             f"use a recording of at least {cfg.min_seconds:g} s")
    mel = frames.array()
    return _normalise_in_place(mel, cfg) if normalised else mel


def samples_log_mel(samples: np.ndarray, rate: int, cfg: FrontEndConfig,
                    source: str = "recording") -> np.ndarray:
    """The normalised log-mel of an in-memory clip (e.g. a microphone recording) at any rate."""
    samples = np.asarray(samples, dtype=np.float32)
    check_samples(samples, source, 0, rate)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.size / rate < cfg.min_seconds:
        raise AudioFileError(source, f"clip too short ({samples.size / rate:.2f} s)",
                             f"use a recording of at least {cfg.min_seconds:g} s")
    y = resample(samples, rate, cfg.sample_rate, cfg.resample_quality)
    return normalise(log_mel_db(y, cfg), cfg)


# ----------------------------------------------------------------------------------------- chunking

def chunk_spans(n_frames: int, cfg: FrontEndConfig) -> list[tuple[int, int]]:
    """The chunk rule: which frame spans of a clip are embedded (their embeddings are averaged).

    A clip no longer than one chunk is embedded whole. A longer clip is cut into chunks of
    ``chunk_frames`` every ``chunk_hop_frames``; a remainder of at least half a chunk adds one chunk
    aligned to the clip's end. More than ``max_chunks`` chunks are thinned to evenly spaced ones.
    """
    size, hop = cfg.chunk_frames, cfg.chunk_hop_frames
    if n_frames <= size:
        return [(0, n_frames)]
    starts = list(range(0, n_frames - size + 1, hop))
    if n_frames - (starts[-1] + size) >= size / 2:
        starts.append(n_frames - size)
    if len(starts) > cfg.max_chunks:
        keep = np.linspace(0, len(starts) - 1, cfg.max_chunks).round().astype(int)
        starts = [starts[i] for i in keep]
    return [(s, s + size) for s in starts]


def chunk_log_mel(log_mel: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """Cut a (n_mels, T) log-mel by :func:`chunk_spans` into a batch (n_chunks, 1, n_mels, frames)."""
    spans = chunk_spans(log_mel.shape[1], cfg)
    return np.stack([log_mel[None, :, a:b] for a, b in spans]).astype(np.float32, copy=False)
