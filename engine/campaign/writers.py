"""Writing recorder files in their real shapes, for the generated campaign and tests (torch-free).

- AudioMoth: a 16-bit PCM WAV laid out as the AudioMoth firmware writes it: RIFF, fmt, a LIST/INFO chunk
  with a fixed-size, NUL-padded ICMT comment (384 bytes) and IART artist (32 bytes), then data. The comment
  follows firmware 1.6-1.8 ("Recorded at 06:30:00 22/05/2019 (UTC) by AudioMoth 24F319055FDF2F5B at medium
  gain while battery was 4.2V and temperature was 18.3C."). We pack this header with ``struct`` because no
  library writes it: libsndfile writes the comment chunk with only the bytes it needs, and metamoth (which
  reads the comment as the chunk size minus 4 bytes, relying on the firmware's padding) then loses its end.
- GUANO: written with the ``guano`` package (it writes a plain PCM WAV and appends the 'guan' chunk).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

AUDIOMOTH_COMMENT_BYTES = 384  # LENGTH_OF_COMMENT in the AudioMoth firmware
AUDIOMOTH_ARTIST_BYTES = 32  # LENGTH_OF_ARTIST
GAIN_NAMES = ("low", "low-medium", "medium", "medium-high", "high")


def audiomoth_name(start_utc: datetime) -> str:
    """``YYYYMMDD_HHMMSS.WAV`` in UTC, as the firmware names files."""
    return start_utc.astimezone(UTC).strftime("%Y%m%d_%H%M%S") + ".WAV"


def song_meter_name(prefix: str, start_local: datetime) -> str:
    """``PREFIX_YYYYMMDD_HHMMSS.wav`` in the recorder's local time (Song Meter SM4 / SM Mini)."""
    return f"{prefix}_{start_local.strftime('%Y%m%d_%H%M%S')}.wav"


def audiomoth_comment(start_utc: datetime, device_id: str, gain: int = 2, battery_v: float = 4.2,
                      temperature_c: float = 18.3) -> str:
    """The firmware 1.6-1.8 comment for a recording starting at ``start_utc`` (time zone UTC)."""
    if len(device_id) != 16:
        raise ValueError(f"AudioMoth ids have 16 hex digits, not {device_id!r}")
    moment = start_utc.astimezone(UTC)
    return (f"Recorded at {moment.strftime('%H:%M:%S %d/%m/%Y')} (UTC) by AudioMoth {device_id} at "
            f"{GAIN_NAMES[gain]} gain while battery was {battery_v:.1f}V and temperature was {temperature_c:.1f}C.")


def _pcm16(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.dtype != np.int16:
        x = np.round(np.clip(x, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    return x


def write_audiomoth_wav(path: Path, samples: np.ndarray, sample_rate: int, comment: str, device_id: str) -> None:
    """A mono 16-bit WAV with the AudioMoth header (see the module docstring)."""
    data = _pcm16(samples).astype("<i2").tobytes()
    icmt = comment.encode("utf-8")[:AUDIOMOTH_COMMENT_BYTES].ljust(AUDIOMOTH_COMMENT_BYTES, b"\x00")
    iart = f"AudioMoth {device_id}".encode()[:AUDIOMOTH_ARTIST_BYTES].ljust(AUDIOMOTH_ARTIST_BYTES, b"\x00")
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(icmt)) + icmt + b"IART" + struct.pack("<I", len(iart)) + iart
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", len(info)) + info
            + b"data" + struct.pack("<I", len(data)) + data)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_guano_wav(path: Path, samples: np.ndarray, sample_rate: int, metadata: dict[str, object]) -> None:
    """A mono 16-bit WAV carrying GUANO ``metadata`` (keys like 'Timestamp', 'Loc Position', 'Serial')."""
    import guano

    pcm = _pcm16(samples)
    md = guano.GuanoFile()
    md.filename = str(path)
    md.wav_params = guano.wavparams(1, 2, sample_rate, len(pcm), "NONE", "not compressed")
    md.wav_data = pcm.astype("<i2").tobytes()
    md["GUANO|Version"] = "1.0"
    md["Samplerate"] = sample_rate
    md["Length"] = len(pcm) / sample_rate
    for key, value in metadata.items():
        md[key] = value
    md.write(make_backup=False)
