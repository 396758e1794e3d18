"""Honest audio: the levels of a clip in dBFS (peak, RMS), and whether it is silent, nearly silent,
clipped or carries a DC offset. Qt-free; used on microphone recordings (live and the whole take) and on
files, before a search is made.

Thresholds, and why:

* **silent**: the loudest sample is below -80 dBFS. 16-bit audio's smallest step is -96 dBFS and any real
  microphone's self-noise lies far above -80 dBFS, so below it there is no sound at all (a muted input, a
  file of zeros). The front-end normalises every clip to zero mean and unit spread, which would blow such
  a clip's rounding noise up to full contrast: a search with it is meaningless, so none is made.
* **nearly silent**: RMS below -60 dBFS. A quiet field recording sits around -50 to -30 dBFS RMS; below -60
  mostly the recorder's own noise is left. The search is made, with a warning.
* **clipped**: at least 0.1 % of the samples at full scale (|x| >= 0.999, within a 16-bit step of the
  limit). A single full-scale peak happens in good recordings; a thousandth of the clip flattened at the
  limit distorts the spectrum (harmonics that are not in the scene).
* **DC offset**: the mean is beyond ±0.01 (-40 dBFS). Sound averages to zero; a larger mean is a faulty
  input or converter. The front-end's high bands do not see it, but its lowest band and the level do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SILENT_PEAK_DBFS = -80.0
QUIET_RMS_DBFS = -60.0
CLIP_LEVEL = 0.999
CLIP_FRACTION = 1e-3
DC_OFFSET_LIMIT = 0.01
FLOOR_DBFS = -120.0  # what an all-zero clip reads as (instead of -inf)


def to_dbfs(amplitude: float) -> float:
    """An amplitude (1.0 = full scale) in dBFS, floored at -120."""
    return max(FLOOR_DBFS, 20.0 * math.log10(amplitude)) if amplitude > 0 else FLOOR_DBFS


@dataclass(frozen=True)
class AudioLevels:
    """The levels of a clip and what they mean.

    Attributes:
        peak_dbfs: the loudest sample, dBFS.
        rms_dbfs: the RMS level, dBFS.
        dc_offset: the mean sample value (full scale = 1).
        clipped_fraction: the share of samples at full scale.
        samples: how many samples were measured.
    """

    peak_dbfs: float
    rms_dbfs: float
    dc_offset: float
    clipped_fraction: float
    samples: int

    @property
    def silent(self) -> bool:
        return self.peak_dbfs < SILENT_PEAK_DBFS

    @property
    def quiet(self) -> bool:
        return not self.silent and self.rms_dbfs < QUIET_RMS_DBFS

    @property
    def clipped(self) -> bool:
        return self.clipped_fraction >= CLIP_FRACTION

    @property
    def has_dc_offset(self) -> bool:
        return abs(self.dc_offset) > DC_OFFSET_LIMIT

    def warnings(self) -> list[str]:
        """What is wrong with the clip, one short sentence each (empty when nothing is)."""
        found = []
        if self.silent:
            found.append(f"this clip is silent (peak {self.peak_dbfs:.0f} dBFS): no search was made")
        elif self.quiet:
            found.append(f"this clip is nearly silent (RMS {self.rms_dbfs:.0f} dBFS); the matches may mean little")
        if self.clipped:
            found.append(f"this clip is clipped ({100 * self.clipped_fraction:.1f} % of the samples at full "
                         "scale); lower the input gain")
        if self.has_dc_offset:
            found.append(f"this clip has a DC offset (mean {self.dc_offset:+.3f}); check the input device")
        return found

    def summary(self) -> str:
        """'peak -12.3 dBFS, RMS -31.0 dBFS'."""
        return f"peak {self.peak_dbfs:.1f} dBFS, RMS {self.rms_dbfs:.1f} dBFS"


class LevelAccumulator:
    """Levels over a clip that arrives block by block (a file streamed, a recording as it grows)."""

    def __init__(self) -> None:
        self.count = 0
        self.peak = 0.0
        self.sum = 0.0
        self.sum_sq = 0.0
        self.clipped = 0

    def add(self, block: np.ndarray) -> None:
        x = np.asarray(block, dtype=np.float64).ravel()
        if x.size == 0:
            return
        magnitude = np.abs(x)
        self.count += x.size
        self.peak = max(self.peak, float(magnitude.max()))
        self.sum += float(x.sum())
        self.sum_sq += float(np.dot(x, x))
        self.clipped += int(np.count_nonzero(magnitude >= CLIP_LEVEL))

    def levels(self) -> AudioLevels:
        if self.count == 0:
            return AudioLevels(FLOOR_DBFS, FLOOR_DBFS, 0.0, 0.0, 0)
        rms = math.sqrt(self.sum_sq / self.count)
        return AudioLevels(to_dbfs(self.peak), to_dbfs(rms), self.sum / self.count, self.clipped / self.count,
                           self.count)


def measure(samples: np.ndarray) -> AudioLevels:
    """The levels of a whole clip."""
    acc = LevelAccumulator()
    acc.add(samples)
    return acc.levels()
