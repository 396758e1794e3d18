"""Playback as a scientist's player does it: a position from the frames the output stream consumed (not
wall time), seek, gain or normalise. The audio callback only copies samples; the GUI polls
:attr:`ClipPlayer.position_seconds` to draw the playhead. Qt-free."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

NORMALISE_PEAK_DBFS = -1.0  # normalised playback peaks here, leaving a little headroom
MAX_GAIN_DB = 40.0


def playback_gain(samples: np.ndarray, gain_db: float, normalise: bool) -> float:
    """The linear factor applied to ``samples``: ``gain_db`` on top of peak normalisation (if asked)."""
    factor = 10.0 ** (max(-MAX_GAIN_DB, min(MAX_GAIN_DB, float(gain_db))) / 20.0)
    if normalise:
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        if peak > 0:
            factor *= 10.0 ** (NORMALISE_PEAK_DBFS / 20.0) / peak
    return factor


class ClipPlayer:
    """Plays one mono clip at a time on the default output; seekable, with gain.

    Args:
        backend: opens the output stream (``open_output_stream(rate, callback, finished)``); a test
            passes a fake whose stream calls the callback like PortAudio does.
    """

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._stream: Any = None
        self._samples = np.zeros(0, np.float32)
        self._rate = 1
        self._pos = 0  # frames the stream has taken (the playhead)
        self._factor = 1.0
        self._done = threading.Event()
        self._done.set()
        self.path: str | None = None
        self.gain_db = 0.0
        self.normalise = False

    # --------------------------------------------------------------------------- control

    def play(self, samples: np.ndarray, rate: int, path: str | None = None, start_s: float = 0.0) -> None:
        """Stop what is playing and play ``samples`` (mono float32) from ``start_s``."""
        self.stop()
        self._samples = np.ascontiguousarray(samples, dtype=np.float32)
        self._rate = int(rate)
        self._factor = playback_gain(self._samples, self.gain_db, self.normalise)
        self._pos = self._frame_at(start_s)
        self._done.clear()
        self.path = path
        self._stream = self._backend.open_output_stream(self._rate, self._callback, self._done.set)
        self._stream.start()

    def seek(self, seconds: float) -> None:
        """Move the playhead to ``seconds`` (the next audio block plays from there)."""
        self._pos = self._frame_at(seconds)

    def set_gain(self, gain_db: float, normalise: bool) -> None:
        """Change the gain (dB) and normalisation; a playing clip changes at its next block."""
        self.gain_db, self.normalise = float(gain_db), bool(normalise)
        self._factor = playback_gain(self._samples, self.gain_db, self.normalise)

    def stop(self) -> None:
        """Stop and close the stream (a no-op when nothing plays)."""
        stream, self._stream = self._stream, None
        self.path = None
        if stream is not None:
            try:
                stream.abort()
            finally:
                stream.close()
        self._done.set()

    # ------------------------------------------------------------------------------ state

    def _frame_at(self, seconds: float) -> int:
        return int(round(max(0.0, min(float(seconds), self.duration_seconds)) * self._rate))

    @property
    def duration_seconds(self) -> float:
        return self._samples.size / self._rate

    @property
    def position_seconds(self) -> float:
        """Where the playhead is: the frames the output stream has consumed, over the clip's rate."""
        return min(self._pos, self._samples.size) / self._rate

    @property
    def active(self) -> bool:
        return self._stream is not None and not self._done.is_set()

    # ------------------------------------------------------------------- the audio thread

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        pos = self._pos
        chunk = self._samples[pos:pos + frames]
        n = chunk.size
        outdata[:n, 0] = np.clip(chunk * self._factor, -1.0, 1.0)
        outdata[n:, 0] = 0.0
        self._pos = pos + n
        if n < frames:
            raise self._stop_exception()

    def _stop_exception(self) -> BaseException:
        sd = getattr(self._backend, "sd", None)
        return sd.CallbackStop() if sd is not None else StopIteration()
