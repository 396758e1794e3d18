"""Stand-ins for the trust tests: an output stream the test drives block by block, a backend whose
input stream fails as PortAudio does, and a fake training engine."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from tests.app.audio_fakes import FakeAudioBackend


class FakeOutputStream:
    """Calls the player's callback only when the test asks (:meth:`pump`), like PortAudio taking blocks."""

    def __init__(self, rate: int, callback: Any, finished: Any) -> None:
        self.samplerate, self.callback, self.finished = rate, callback, finished
        self.started = self.closed = False
        self.taken: list[np.ndarray] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self.started = True

    def pump(self, frames: int) -> np.ndarray:
        """Take ``frames`` frames from the player (what the sound card would play next)."""
        out = np.zeros((frames, 1), np.float32)
        try:
            self.callback(out, frames, None, 0)
        except StopIteration:
            self.finished()
        self.taken.append(out[:, 0].copy())
        return out[:, 0]

    def abort(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


class PlaybackBackend(FakeAudioBackend):
    """The fake backend, with output streams the test pumps."""

    def __init__(self) -> None:
        super().__init__()
        self.streams: list[FakeOutputStream] = []

    def open_output_stream(self, rate: int, callback: Any, finished: Any) -> FakeOutputStream:
        self.streams.append(FakeOutputStream(rate, callback, finished))
        return self.streams[-1]


class PortAudioError(Exception):
    """Shaped like sounddevice.PortAudioError: args (message, PaErrorCode, host API info); its text
    appends the code as sounddevice's does."""

    def __str__(self) -> str:
        return f"{self.args[0]} [PaErrorCode {self.args[1]}]"


def failing_input_stream(code: int, text: str) -> Any:
    def open_stream(device: Any, rate: int, callback: Any) -> Any:
        raise PortAudioError(f"Error opening InputStream: {text}", code, ("ALSA", 0))
    return open_stream
