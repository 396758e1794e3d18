"""A stand-in for a sound card: an input stream that feeds real samples to the real callback.

It replaces only PortAudio: the app's :class:`~app.services.audio_io.Recorder` callback, ring
buffer, live spectrogram and query run unchanged.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from app.services.audio_io import AudioBackend, AudioDevice

FAKE_DEVICE = AudioDevice(index=7, name="Test microphone", hostapi="fake", max_input_channels=1,
                          default_samplerate=44100.0)


class FakeInputStream:
    """Calls ``callback(indata, frames, time, status)`` from its own thread with blocks of ``samples``
    (faster than real time, ``speed`` x), like a PortAudio input stream; silence after the end."""

    def __init__(self, samples: np.ndarray, callback: Any, block: int = 1024, speed: float = 8.0,
                 rate: int = 44100) -> None:
        self.samples = np.asarray(samples, dtype=np.float32)
        self.callback, self.block, self.speed, self.rate = callback, block, speed, rate
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.blocks_sent = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-input-stream", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pos = 0
        while not self._stop.is_set():
            chunk = self.samples[pos:pos + self.block]
            if chunk.size < self.block:
                chunk = np.concatenate([chunk, np.zeros(self.block - chunk.size, np.float32)])
            self.callback(chunk[:, None].copy(), self.block, None, 0)
            self.blocks_sent += 1
            pos += self.block
            time.sleep(self.block / self.rate / self.speed)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()


class FakeAudioBackend(AudioBackend):
    """One input device and one output; streams come from the test."""

    def __init__(self) -> None:
        super().__init__(None, "")

    @property
    def loaded(self) -> bool:
        return False

    def input_devices(self) -> list[AudioDevice]:
        return [FAKE_DEVICE]

    def default_input(self) -> AudioDevice | None:
        return FAKE_DEVICE

    def default_output_name(self) -> str | None:
        return "Test speakers"

    def input_reason(self) -> str:
        return ""

    def output_reason(self) -> str:
        return ""

    def input_rate(self, device: AudioDevice, preferred: int) -> int:
        return int(device.default_samplerate)  # like a device that only runs at 44.1 kHz
