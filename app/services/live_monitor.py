"""The live monitor of a recording: what the audio callback put into the ring buffer, read on each tick,
resampled to the model's rate, turned into log-mel frames for the scrolling spectrogram, and measured
(the level of the last 50 ms and the levels of the whole take so far). Qt-free: the GUI's timer calls
:meth:`LiveMonitor.poll` through the audio controller and the record panel draws what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from app.services.audio_check import AudioLevels, LevelAccumulator, measure
from app.services.ring_buffer import RingBuffer
from engine.audio import StreamingLogMel

LEVEL_WINDOW_S = 0.05  # the meter shows the last 50 ms: fast enough to follow speech, slow enough to read


@dataclass(frozen=True)
class MonitorUpdate:
    """What arrived since the last poll.

    Attributes:
        frames: (n_mels, k) new log-mel frames in dB (k may be 0).
        level: the levels of the last 50 ms.
        take: the levels of everything recorded so far.
        seconds: recorded length so far.
        full: the recording reached its maximum length.
    """

    frames: np.ndarray
    level: AudioLevels
    take: AudioLevels
    seconds: float
    full: bool


class LiveMonitor:
    """Follows one recording's ring buffer (ring -> resample -> log-mel -> level).

    Args:
        ring: the recorder's ring buffer (written by the audio callback).
        rate: the recording's sample rate.
        cfg: the front-end (``engine.audio.FrontEndConfig``) whose rate and log-mel the frames use.
        capacity: samples the recording holds at most (when reached, ``full`` is True).
    """

    def __init__(self, ring: RingBuffer, rate: int, cfg: Any, capacity: int) -> None:
        self.ring, self.rate, self.cfg, self.capacity = ring, int(rate), cfg, int(capacity)
        self._position = 0
        self._log_mel = StreamingLogMel(cfg)
        self._resampler = None if self.rate == cfg.sample_rate else soxr.ResampleStream(
            self.rate, cfg.sample_rate, 1, dtype="float32", quality="LQ")  # LQ: display only, lowest latency
        self._take = LevelAccumulator()

    def poll(self) -> MonitorUpdate:
        """Read what is new in the ring and turn it into frames and levels."""
        samples, self._position = self.ring.read_since(self._position)
        self._take.add(samples)
        frames = np.zeros((self.cfg.n_mels, 0), np.float32)
        if samples.size:
            y = samples if self._resampler is None else self._resampler.resample_chunk(samples)
            if y.size:
                frames = self._log_mel.push(y)
        recent = self.ring.latest(int(LEVEL_WINDOW_S * self.rate))
        written = self.ring.written
        return MonitorUpdate(frames=frames, level=measure(recent), take=self._take.levels(),
                             seconds=written / self.rate, full=written >= self.capacity)
