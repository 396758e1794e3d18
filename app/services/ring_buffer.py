"""A fixed-size ring of mono float32 samples, written by the audio callback and read by the GUI.

The PortAudio callback runs on a real-time thread and must never wait long, allocate much or touch
Qt: it only copies its block in here. A QTimer on the GUI thread reads what is new since its last
visit (the level meter and the live spectrogram) and, at the end, the whole recording.
"""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """Single-producer ring buffer of float32 samples with absolute read positions.

    Positions count samples written since creation; a reader keeps its own position and asks for
    what came after it. Samples older than ``capacity`` are overwritten (a reader that falls that
    far behind gets only the newest ``capacity`` samples and can tell from the returned position).
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, np.float32)
        self._written = 0
        # The lock is held only for a memcpy on either side, far below a callback's deadline.
        self._lock = threading.Lock()

    @property
    def written(self) -> int:
        """Samples written since creation (the position just after the newest sample)."""
        return self._written

    def write(self, block: np.ndarray) -> None:
        """Append samples (called from the audio thread)."""
        block = np.asarray(block, dtype=np.float32).ravel()
        n = block.size
        if n == 0:
            return
        if n >= self.capacity:
            block, skipped = block[-self.capacity:], n - self.capacity
        else:
            skipped = 0
        with self._lock:
            start = (self._written + skipped) % self.capacity
            first = min(block.size, self.capacity - start)
            self._data[start:start + first] = block[:first]
            if first < block.size:
                self._data[:block.size - first] = block[first:]
            self._written += n

    def read_since(self, position: int) -> tuple[np.ndarray, int]:
        """Samples written after ``position``, oldest first, and the new position.

        Returns:
            (samples copy, position after them). If ``position`` is older than the ring holds, the
            samples start at the oldest one still held.
        """
        with self._lock:
            end = self._written
            start = max(position, end - self.capacity, 0)
            out = self._slice(start, end)
        return out, end

    def latest(self, count: int) -> np.ndarray:
        """The newest ``count`` samples (fewer if fewer were written)."""
        with self._lock:
            end = self._written
            return self._slice(max(0, end - min(count, self.capacity)), end)

    def _slice(self, start: int, end: int) -> np.ndarray:
        n = end - start
        if n <= 0:
            return np.zeros(0, np.float32)
        a = start % self.capacity
        if a + n <= self.capacity:
            return self._data[a:a + n].copy()
        return np.concatenate([self._data[a:], self._data[:n - (self.capacity - a)]])
