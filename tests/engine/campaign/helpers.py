"""Small recorder files for the campaign tests, in the real formats."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.campaign.writers import audiomoth_comment, audiomoth_name, write_audiomoth_wav


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


def plain_wav(path: Path, seconds: float = 2.0, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, rate), rate, subtype="PCM_16")
    return path


def audiomoth_file(folder: Path, start_utc: datetime, device: str = "24F319055FDF2F5B", seconds: float = 2.0,
                   rate: int = 16000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / audiomoth_name(start_utc)
    write_audiomoth_wav(path, tone(seconds, rate), rate, audiomoth_comment(start_utc, device), device)
    return path
