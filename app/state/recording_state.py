"""The recording session in one object: the device, the length so far, the live levels and the new
spectrogram frames the record panel draws. Written by the audio controller; no Qt, no computing."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.state.observable import Event


class RecordingSession:
    """One microphone recording while it runs.

    Attributes:
        device_name: the input device.
        rate: its sample rate (Hz).
        max_seconds: when it stops by itself.
        front_end: the front-end (``FrontEndConfig``) the live frames are computed with.
        seconds: recorded so far.
        level: the levels of the last 50 ms (``AudioLevels``), None before the first tick.
        take: the levels of the whole take so far.
    """

    def __init__(self, device_name: str, rate: int, max_seconds: float, front_end: Any) -> None:
        self.changed = Event("recording.changed")
        self.frames_added = Event("recording.frames_added")  # (n_mels, k) dB frames
        self.device_name, self.rate, self.max_seconds, self.front_end = device_name, rate, max_seconds, front_end
        self.seconds = 0.0
        self.level: Any = None
        self.take: Any = None
        self.frames = 0

    def update(self, frames: np.ndarray, level: Any, take: Any, seconds: float) -> None:
        """Fold in one monitor tick."""
        self.level, self.take, self.seconds = level, take, seconds
        if frames.size:
            self.frames += frames.shape[1]
            self.frames_added.emit(frames)
        self.changed.emit()
