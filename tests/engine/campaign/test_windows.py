"""Audio windows come from the right file and offset, and only the window is decoded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import FrontEndConfig
from engine.audio.front_end import read_window
from engine.campaign.windows import (
    SiteFile,
    Window,
    draw_window,
    fixed_windows,
    window_samples,
    windows_log_mel,
)

RATE = 8000
SCALE = 2.0 ** -20  # sample k of file f holds (k + f * 2**19) * SCALE: exact in float32


def _indexed_wav(path: Path, seconds: float, file_id: int) -> SiteFile:
    """A float WAV whose samples encode their own index and the file's id."""
    k = np.arange(int(seconds * RATE), dtype=np.float64)
    sf.write(path, ((k + file_id * 2 ** 19) * SCALE).astype(np.float32), RATE, subtype="FLOAT")
    return SiteFile(path, seconds)


def _decode(samples: np.ndarray) -> tuple[int, np.ndarray]:
    """(file id, sample indices) from decoded samples."""
    raw = np.round(samples.astype(np.float64) / SCALE).astype(np.int64)
    return int(raw[0] // 2 ** 19), raw % 2 ** 19


def test_read_window_returns_exactly_the_window(tmp_path: Path) -> None:
    f = _indexed_wav(tmp_path / "a.wav", 30.0, 1)
    file_id, index = _decode(read_window(f.path, 12.5, 2.0))
    assert file_id == 1
    assert np.array_equal(index, np.arange(100_000, 116_000))
    tail = read_window(f.path, 29.0, 5.0)  # cut short at the end of the file
    assert _decode(tail)[1][-1] == 30 * RATE - 1 and tail.size == RATE


def test_read_window_decodes_only_the_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = _indexed_wav(tmp_path / "long.wav", 60.0, 0)
    asked: list[int] = []
    real_read = sf.SoundFile.read

    def spy(self: sf.SoundFile, frames: int = -1, *args: object, **kwargs: object) -> np.ndarray:
        asked.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    read_window(f.path, 40.0, 1.5)
    assert asked == [int(1.5 * RATE)]


def test_drawn_windows_come_from_the_drawn_file_and_offset(tmp_path: Path) -> None:
    files = [_indexed_wav(tmp_path / "short.wav", 10.0, 1), _indexed_wav(tmp_path / "long.wav", 30.0, 2)]
    rng = np.random.default_rng(0)
    for _ in range(40):
        window = draw_window(files, 2.0, rng)
        file_id, index = _decode(window_samples(window, RATE))
        assert window.path == files[file_id - 1].path
        assert index[0] == round(window.offset_s * RATE) and index.size == 2 * RATE
        assert 0 <= window.offset_s <= files[file_id - 1].duration_s - 2.0
    draws = [draw_window(files, 2.0, rng).path == files[1].path for _ in range(4000)]
    assert np.mean(draws) == pytest.approx(0.75, abs=0.03)  # drawn by duration: 30 s of 40 s


def test_fixed_windows_are_spread_over_the_site_and_deterministic(tmp_path: Path) -> None:
    files = [_indexed_wav(tmp_path / f"{k}.wav", 10.0, k + 1) for k in range(4)]
    windows = fixed_windows(files, 2.0, 4)
    assert windows == fixed_windows(files, 2.0, 4)
    # Centres at 5, 15, 25, 35 s of the 40 s: the middle of each file.
    assert [(w.path, w.offset_s) for w in windows] == [(f.path, 4.0) for f in files]
    cfg = FrontEndConfig(sample_rate=RATE, f_max=4000.0, chunk_seconds=2.0, chunk_hop_seconds=2.0)
    mel = windows_log_mel(windows, cfg)
    assert mel.shape == (cfg.n_mels, 4 * cfg.chunk_frames)


def test_window_past_the_end_is_a_one_line_error(tmp_path: Path) -> None:
    from engine.errors import AudioFileError

    f = _indexed_wav(tmp_path / "a.wav", 3.0, 0)
    with pytest.raises(AudioFileError, match="starts after the end"):
        window_samples(Window(f.path, 5.0, 1.0), RATE)
