"""Acoustic indices of recordings, computed with scikit-maad (torch-free; scikit-maad is in the engine extra).

Each recording is cut into windows of ``window_s`` seconds (the tail shorter than a window is left out,
because ACI and BI grow with the length analysed, so windows must be equal; a recording shorter than
one window is analysed whole). For every window, on its first channel (as ``maad.sound.load`` reads
it) with the mean removed (``maad.sound.load``'s ``detrend``):

- ``Sxx_power, tn, fn, _ = maad.sound.spectrogram(s, fs, window, nperseg, noverlap)`` (power, 'psd'),
  and its square root ``Sxx_amplitude``;
- ``ACI``  = ``acoustic_complexity_index(Sxx_amplitude)`` (the sum over bins);
- ``NDSI``, ``rBA``, ``anthropophony_energy``, ``biophony_energy`` = ``soundscape_index(Sxx_power, fn,
  flim_bioPh=biophony_hz, flim_antroPh=anthropophony_hz, R_compatible)``;
- ``BI``   = ``bioacoustics_index(Sxx_amplitude, fn, flim=biophony_hz, R_compatible)``;
- ``ADI``  = ``acoustic_diversity_index(Sxx_amplitude, fn, fmin=anthropophony_hz[0],
  fmax=biophony_hz[1], bin_step, dB_threshold=adi_db_threshold, index='shannon')``;
- ``AEI``  = ``acoustic_eveness_index(Sxx_amplitude, fn, same band, bin_step, aei_db_threshold)``;
- ``Hf``   = ``frequency_entropy(Sxx_power, compatibility='QUT')[0]``;
- ``Ht``   = ``temporal_entropy(s, compatibility, mode=envelope_mode, Nt=envelope_nt)``.

These are exactly what ``maad.features.all_spectral_alpha_indices(Sxx_power, tn, fn,
flim_low=anthropophony_hz, flim_mid=biophony_hz, R_compatible=..., bin_step=...,
ADI_dB_threshold=..., AEI_dB_threshold=...)`` and ``all_temporal_alpha_indices(s, fs, ...)`` report
under those names (the acceptance test checks it), without the many indices we do not use.

Composition (our definition, chosen by measurement on the demo world, see NOTES): with scikit-maad's
anthropophony and biophony energies A and B, ``anthropophony_share = A / (A + B)``; the biophony band's
power is split into its stationary part, share ``s`` (per-bin median over time summed over the band,
over the per-bin mean summed: the noise floor scikit-maad's ``median_equalizer`` removes; steady hiss of
surf, streams, rain and wind in leaves) and the rest (songs and calls come and go):
``geophony_share = s B / (A + B)``, ``biophony_share = (1 - s) B / (A + B)``. The three sum to 1.

Undefined stays undefined: a digitally silent window gives NaN for every index (never 0); NaN or
infinite results of scikit-maad are NaN. A recording too short for the spectrogram, or sampled too
slowly to hold the biophony band, is skipped with the reason.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.ecology.names import INDEX_NAMES
from engine.errors import AudioFileError, ConfigError

log = logging.getLogger(__name__)

SILENT = "silent"
CLIPPED = "clipped"
CLIP_LEVEL = 0.999  # of full scale
CLIP_FRACTION = 0.001  # a window with more clipped samples than this is marked "clipped"


@dataclass(frozen=True)
class IndexParameters:
    """scikit-maad's parameters for the indices (defaults: its documented ones for
    ``all_spectral_alpha_indices`` / ``all_temporal_alpha_indices``)."""

    window: str = "hann"
    nperseg: int = 1024
    noverlap: int = 512
    anthropophony_hz: tuple[float, float] = (0.0, 1000.0)
    biophony_hz: tuple[float, float] = (1000.0, 10000.0)
    r_compatible: str = "soundecology"
    bin_step: float = 1000.0
    adi_db_threshold: float = -50.0
    aei_db_threshold: float = -50.0
    entropy_compatibility: str = "QUT"
    envelope_mode: str = "fast"
    envelope_nt: int = 512
    detrend: bool = True
    channel: str = "first"

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexParameters:
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def min_samples(self) -> int:
        """Samples a window needs: three whole spectrogram frames (ACI differentiates along time)."""
        return self.nperseg + 2 * (self.nperseg - self.noverlap)

    def min_rate(self) -> float:
        """The lowest sample rate whose Nyquist frequency holds the whole biophony band."""
        return 2.0 * self.biophony_hz[1]


@dataclass(frozen=True)
class WindowIndices:
    """Indices of one window of a recording; ``note`` is "", ``silent`` or ``clipped``."""

    start_s: float
    duration_s: float
    values: dict[str, float]
    note: str = ""


@dataclass
class RecordingIndices:
    """Indices of one recording, window by window. ``skipped`` is a one-line reason when none could be
    computed (then ``windows`` is empty)."""

    path: Path
    sample_rate: int
    duration_s: float
    windows: list[WindowIndices] = field(default_factory=list)
    skipped: str | None = None

    def summary(self, how: str = "mean") -> dict[str, float]:
        """Each index summarised over the windows (``mean`` or ``median``, NaN windows left out; NaN when
        no window has a value)."""
        out = {}
        for name in INDEX_NAMES:
            values = np.array([w.values[name] for w in self.windows], np.float64)
            values = values[np.isfinite(values)]
            if values.size == 0:
                out[name] = math.nan
            else:
                out[name] = float(np.median(values) if how == "median" else np.mean(values))
        return out


def maad_version() -> str:
    """The installed scikit-maad's version; raises ConfigError when it is not installed."""
    try:
        from importlib.metadata import version

        import maad  # noqa: F401 - checks that it imports, not only that its metadata exists

        return version("scikit-maad")
    except ImportError:
        raise ConfigError("scikit-maad", "is not installed (acoustic indices need it)",
                          'install the engine extra: pip install "soundscape-mapper[engine]"') from None


def _finite(x: Any) -> float:
    x = float(x)
    return x if math.isfinite(x) else math.nan


def window_indices(samples: np.ndarray, rate: int, params: IndexParameters) -> dict[str, float]:
    """All :data:`INDEX_NAMES` of one mono window (float samples in [-1, 1]) with scikit-maad.

    Returns NaN for every index of a digitally silent window.
    """
    from maad import features, sound

    s = np.asarray(samples, np.float64)
    if params.detrend:
        s = s - s.mean()
    if not np.any(s):
        return dict.fromkeys(INDEX_NAMES, math.nan)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        sxx_power, _tn, fn, _ext = sound.spectrogram(s, rate, window=params.window, nperseg=params.nperseg,
                                                      noverlap=params.noverlap)
        sxx_amp = np.sqrt(sxx_power)
        low, bio = params.anthropophony_hz, params.biophony_hz
        _, _, aci = features.acoustic_complexity_index(sxx_amp)
        ndsi, rba, anthro, biophony = features.soundscape_index(sxx_power, fn, flim_bioPh=bio, flim_antroPh=low,
                                                                R_compatible=params.r_compatible)
        bi = features.bioacoustics_index(sxx_amp, fn, flim=bio, R_compatible=params.r_compatible)
        adi = features.acoustic_diversity_index(sxx_amp, fn, fmin=low[0], fmax=bio[1], bin_step=params.bin_step,
                                                dB_threshold=params.adi_db_threshold, index="shannon")
        aei = features.acoustic_eveness_index(sxx_amp, fn, fmin=low[0], fmax=bio[1], bin_step=params.bin_step,
                                              dB_threshold=params.aei_db_threshold)
        hf, _ = features.frequency_entropy(sxx_power, compatibility=params.entropy_compatibility)
        ht = features.temporal_entropy(s, compatibility=params.entropy_compatibility, mode=params.envelope_mode,
                                       Nt=params.envelope_nt)
        band = (fn >= bio[0]) & (fn <= bio[1])
        mean_power = float(np.sum(np.mean(sxx_power[band], axis=1)))
        steady = float(np.sum(np.median(sxx_power[band], axis=1))) / mean_power if mean_power > 0 else math.nan
        energy = float(anthro) + float(biophony)
        bio_part = float(biophony) / energy if energy > 0 else math.nan
        values = {"ACI": aci, "ADI": adi, "AEI": aei, "BI": bi, "NDSI": ndsi, "Ht": ht, "Hf": hf, "rBA": rba,
                  "anthropophony_energy": anthro, "biophony_energy": biophony,
                  "biophony_share": (1.0 - steady) * bio_part,
                  "anthropophony_share": float(anthro) / energy if energy > 0 else math.nan,
                  "geophony_share": steady * bio_part}
    return {name: _finite(values[name]) for name in INDEX_NAMES}


def window_spans(n_samples: int, rate: int, window_s: float | None) -> list[tuple[int, int]]:
    """(start, stop) sample spans of equal windows of ``window_s`` seconds; the whole recording as one
    window when it is shorter than a window or ``window_s`` is None/0."""
    if not window_s or n_samples <= round(window_s * rate):
        return [(0, n_samples)]
    size = int(round(window_s * rate))
    return [(k * size, (k + 1) * size) for k in range(n_samples // size)]


def recording_indices(path: str | Path, params: IndexParameters | None = None,
                      window_s: float | None = 60.0) -> RecordingIndices:
    """The indices of one audio file, window by window (read window by window: hours are fine).

    Raises:
        AudioFileError: the file is missing or unreadable.
    """
    import soundfile as sf

    from engine.audio import probe_audio

    params = params or IndexParameters()
    path = Path(path)
    info = probe_audio(path)  # one-line AudioFileError for missing / unreadable files
    rate = int(info.sample_rate)
    try:
        f = sf.SoundFile(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioFileError(path, f"unreadable ({err})", "check the file") from None
    with f:
        n = int(f.frames)
        result = RecordingIndices(path=path, sample_rate=rate, duration_s=n / rate if rate else 0.0)
        if rate < params.min_rate():
            result.skipped = (f"sample rate {rate} Hz is below {params.min_rate():.0f} Hz, twice the top of the "
                              f"biophony band ({params.biophony_hz[1]:.0f} Hz)")
            return result
        if n < params.min_samples():
            result.skipped = (f"{n / rate:.3f} s is shorter than the indices need ({params.min_samples()} samples: "
                              f"3 spectrogram frames of {params.nperseg})")
            return result
        for start, stop in window_spans(n, rate, window_s):
            f.seek(start)
            block = f.read(stop - start, dtype="float64", always_2d=True)
            if block.shape[0] < params.min_samples():
                break
            mono = block[:, 0]
            if not np.all(np.isfinite(mono)):
                raise AudioFileError(path, "holds NaN or infinite samples", "check the recorder or the export")
            values = window_indices(mono, rate, params)
            clipped = float(np.mean(np.abs(mono) >= CLIP_LEVEL))
            note = SILENT if not np.any(mono - mono.mean()) else (CLIPPED if clipped > CLIP_FRACTION else "")
            result.windows.append(WindowIndices(start / rate, block.shape[0] / rate, values, note))
    return result
