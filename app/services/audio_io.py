"""Audio input and output through sounddevice (PortAudio), with a clear reason when unavailable.

``import sounddevice`` raises ``OSError`` when the PortAudio library is missing; a machine may also
have PortAudio but no device. Both cases give an :class:`AudioBackend` that says why, so the window
can disable record and play with that reason as a tooltip and keep everything else working.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from app.services.ring_buffer import RingBuffer

log = logging.getLogger(__name__)

# Below this peak a sample counts as silence when trimming the edges of a recording (-80 dBFS).
SILENCE_PEAK = 1e-4
SILENCE_WINDOW_S = 0.02


@dataclass(frozen=True)
class AudioDevice:
    """An input device as PortAudio lists it."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: float

    @property
    def label(self) -> str:
        return f"{self.name} ({self.hostapi})" if self.hostapi else self.name


class AudioBackend:
    """sounddevice if it loaded, else the reason it did not.

    Args:
        sd: the ``sounddevice`` module, or None when audio is unavailable.
        reason: why audio is unavailable (shown as a tooltip); ignored when ``sd`` is given.
    """

    def __init__(self, sd: ModuleType | None, reason: str = "") -> None:
        self.sd = sd
        self._reason = reason if sd is None else ""

    @classmethod
    def load(cls, importer: Callable[[str], ModuleType] = importlib.import_module) -> AudioBackend:
        """Import sounddevice; a missing PortAudio library becomes a reason, not a crash."""
        try:
            return cls(importer("sounddevice"))
        except OSError as err:  # sounddevice raises OSError when libportaudio cannot be loaded
            return cls(None, f"PortAudio is not installed ({err}); install it (Debian/Ubuntu: "
                             "'apt install libportaudio2') and restart")
        except ImportError as err:
            return cls(None, f"the sounddevice package is missing ({err}); run 'pip install sounddevice'")

    @property
    def loaded(self) -> bool:
        return self.sd is not None

    def _devices(self) -> list[dict[str, Any]]:
        if self.sd is None:
            return []
        try:
            return [dict(d) for d in self.sd.query_devices()]
        except Exception as err:  # PortAudioError: a broken host API must not break the window
            log.warning("listing audio devices failed: %s", err)
            return []

    def _hostapi_name(self, index: int) -> str:
        try:
            return str(self.sd.query_hostapis(index)["name"])  # type: ignore[union-attr]
        except Exception:
            return ""

    def input_devices(self) -> list[AudioDevice]:
        """Every device with at least one input channel, in PortAudio's order."""
        return [AudioDevice(i, str(d["name"]), self._hostapi_name(int(d.get("hostapi", 0))),
                            int(d["max_input_channels"]), float(d["default_samplerate"]))
                for i, d in enumerate(self._devices()) if int(d.get("max_input_channels", 0)) > 0]

    def default_input(self) -> AudioDevice | None:
        """The system's default input device, or the first input device, or None."""
        devices = self.input_devices()
        if not devices:
            return None
        try:
            default = int(self.sd.default.device[0])  # type: ignore[union-attr]
        except Exception:
            default = -1
        return next((d for d in devices if d.index == default), devices[0])

    def default_output_name(self) -> str | None:
        """The default output device's name, or None when there is no output."""
        devices = self._devices()
        outputs = [i for i, d in enumerate(devices) if int(d.get("max_output_channels", 0)) > 0]
        if not outputs:
            return None
        try:
            default = int(self.sd.default.device[1])  # type: ignore[union-attr]
        except Exception:
            default = -1
        return str(devices[default if default in outputs else outputs[0]]["name"])

    def input_reason(self) -> str:
        """Why recording is unavailable ('' when it is available)."""
        if self.sd is None:
            return self._reason
        return "" if self.input_devices() else "no audio input device found; connect a microphone"

    def output_reason(self) -> str:
        """Why playback is unavailable ('' when it is available)."""
        if self.sd is None:
            return self._reason
        return "" if self.default_output_name() else "no audio output device found; connect speakers"

    def input_rate(self, device: AudioDevice, preferred: int) -> int:
        """``preferred`` if the device accepts it (saves a resampling step), else its default rate."""
        try:
            self.sd.check_input_settings(device=device.index, samplerate=preferred,  # type: ignore[union-attr]
                                         channels=1, dtype="float32")
            return int(preferred)
        except Exception:
            return int(round(device.default_samplerate))

    def open_input_stream(self, device: AudioDevice, rate: int, callback: Callable[..., None],
                          blocksize: int = 0) -> Any:
        """An unstarted ``sounddevice.InputStream`` (mono float32)."""
        if self.sd is None:
            raise RuntimeError(self._reason)
        return self.sd.InputStream(device=device.index, samplerate=rate, channels=1, dtype="float32",
                                   blocksize=blocksize, callback=callback)

    def open_output_stream(self, rate: int, callback: Callable[..., None],
                           finished: Callable[[], None]) -> Any:
        """An unstarted ``sounddevice.OutputStream`` (mono float32) on the default output."""
        if self.sd is None:
            raise RuntimeError(self._reason)
        return self.sd.OutputStream(samplerate=rate, channels=1, dtype="float32", callback=callback,
                                    finished_callback=finished)


StreamFactory = Callable[[AudioDevice, int, Callable[..., None]], Any]


class Recorder:
    """Records mono audio from an input device into a :class:`RingBuffer`.

    The PortAudio callback (:meth:`callback`) only copies samples into the ring; the GUI reads them
    from :attr:`ring`. The ring holds ``max_seconds`` so the whole recording can be taken at the end.

    Args:
        open_stream: ``(device, rate, callback) -> stream`` with start/stop/close (sounddevice's
            InputStream, or a fake in tests).
        device: the input device.
        rate: the sample rate to record at.
        max_seconds: the recording stops growing after this long (the GUI stops it there).
    """

    def __init__(self, open_stream: StreamFactory, device: AudioDevice, rate: int, max_seconds: float) -> None:
        if max_seconds <= 0:
            raise ValueError("max_seconds must be positive")
        self.device, self.rate, self.max_seconds = device, int(rate), float(max_seconds)
        self.max_samples = int(math.ceil(self.max_seconds * self.rate))
        self.ring = RingBuffer(self.max_samples)
        self._open_stream = open_stream
        self._stream: Any = None
        self.status_flags = 0  # how many callbacks reported over- or underflows

    def callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """The PortAudio callback: copy the block (mixed to mono) into the ring, nothing more."""
        if status:
            self.status_flags += 1
        if self.ring.written >= self.max_samples:
            return  # full: keep the first max_seconds, as a user who set a maximum expects
        block = indata[:, 0] if indata.ndim == 2 and indata.shape[1] == 1 else (
            indata.mean(axis=1) if indata.ndim == 2 else indata)
        self.ring.write(block[: self.max_samples - self.ring.written])

    def start(self) -> None:
        """Open and start the input stream. Raises whatever PortAudio raises (the caller reports it)."""
        self._stream = self._open_stream(self.device, self.rate, self.callback)
        self._stream.start()

    @property
    def seconds(self) -> float:
        return self.ring.written / self.rate

    @property
    def full(self) -> bool:
        return self.ring.written >= self.max_samples

    def stop(self) -> np.ndarray:
        """Stop and close the stream. Returns the recorded samples (float32 mono at ``rate``)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()
        samples, _ = self.ring.read_since(0)
        return samples


def trim_silent_edges(samples: np.ndarray, rate: int, peak: float = SILENCE_PEAK) -> np.ndarray:
    """Drop digital silence at the start and end of a recording.

    Input devices often deliver zeros for their first buffers while they start, and a recording
    stopped after the sound ended carries a silent tail; both would shift the clip's normalisation
    (mean and spread of its log-mel) away from the sound itself. Only 20 ms windows whose peak is
    below ``peak`` (-80 dBFS) count, so a quiet room (a real microphone's noise floor is far above
    that) is kept whole. An all-silent clip is returned unchanged.
    """
    samples = np.asarray(samples, dtype=np.float32)
    win = max(1, int(rate * SILENCE_WINDOW_S))
    n = samples.size // win
    if n == 0:
        return samples
    peaks = np.abs(samples[: n * win]).reshape(n, win).max(axis=1)
    loud = np.flatnonzero(peaks >= peak)
    if loud.size == 0:
        return samples
    start = loud[0] * win
    end = samples.size if loud[-1] == n - 1 else (loud[-1] + 1) * win
    return samples[start:end]


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-120 for silence)."""
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(-120.0, 20.0 * math.log10(rms)) if rms > 0 else -120.0


def decode_for_playback(path: str, max_seconds: float) -> tuple[np.ndarray, int]:
    """A recording decoded to mono at its own rate, cut to its first ``max_seconds`` (for the speakers).

    Raises:
        AudioFileError: the file cannot be read.
    """
    from engine.audio import load_audio

    samples, rate = load_audio(path)
    return samples[: int(max_seconds * rate)], rate
