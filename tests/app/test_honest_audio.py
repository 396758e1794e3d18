"""Honest audio: levels in dBFS against hand-computed values, the live monitor against the ring's samples,
and through the window: a silent real recording (its samples zeroed) gives "no search was made" with no
heat map and no match; a clipped one (the same recording scaled past full scale) gives the clipping
warning with the share of clipped samples counted here; silence draws at the bottom of the absolute
colour scale."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.services.audio_check import CLIP_LEVEL, FLOOR_DBFS, measure
from app.services.live_monitor import LiveMonitor
from app.services.ring_buffer import RingBuffer
from app.widgets.spectrogram_view import LEVELS_DB
from engine.audio import FrontEndConfig, StreamingLogMel
from tests.app.audio_fakes import FakeAudioBackend, FakeInputStream

CLIP = "spinetail.wav"


def test_levels_of_known_signals() -> None:
    t = np.arange(48000) / 48000
    half = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    levels = measure(half)
    assert levels.peak_dbfs == pytest.approx(20 * math.log10(0.5), abs=0.01)
    assert levels.rms_dbfs == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.01)
    assert levels.warnings() == []
    zeros = measure(np.zeros(1000, np.float32))
    assert zeros.silent and zeros.peak_dbfs == FLOOR_DBFS
    assert zeros.warnings() == ["this clip is silent (peak -120 dBFS): no search was made"]
    quiet = measure(half * 10 ** (-60 / 20))  # RMS -69 dBFS, peak -66 dBFS: quiet, not silent
    assert quiet.quiet and not quiet.silent
    clipped = measure(np.clip(4 * half, -1, 1))
    expected = np.count_nonzero(np.abs(np.clip(4 * half, -1, 1)) >= CLIP_LEVEL) / half.size
    assert clipped.clipped and clipped.clipped_fraction == pytest.approx(expected)
    dc = measure(half + 0.05)
    assert dc.has_dc_offset and dc.dc_offset == pytest.approx(0.05, abs=1e-4)


def test_the_live_monitor_turns_the_ring_into_frames_and_levels(realdata: Path) -> None:
    samples, rate = sf.read(realdata / "audio" / CLIP, dtype="float32", frames=3 * 44100)
    samples = samples if samples.ndim == 1 else samples.mean(axis=1)
    cfg = FrontEndConfig()
    ring = RingBuffer(rate * 4)
    monitor = LiveMonitor(ring, rate, cfg, rate * 4)
    frames = 0
    for start in range(0, samples.size, 4410):  # 100 ms blocks, as a callback would write them
        ring.write(samples[start:start + 4410])
        update = monitor.poll()
        frames += update.frames.shape[1]
    last = samples[-int(0.05 * rate):]
    assert update.level.rms_dbfs == pytest.approx(20 * math.log10(float(np.sqrt(np.mean(last.astype(np.float64) ** 2)))),
                                                  abs=1e-3)
    assert update.take.peak_dbfs == pytest.approx(20 * math.log10(float(np.abs(samples).max())), abs=1e-3)
    assert update.seconds == pytest.approx(samples.size / rate) and not update.full
    # As many frames as the front-end makes from the whole clip at its rate (streaming holds back a few).
    reference = StreamingLogMel(cfg).push(np.zeros(int(samples.size * cfg.sample_rate / rate), np.float32))
    assert abs(frames - reference.shape[1]) <= 2


@pytest.fixture
def silent_and_clipped(realdata: Path, tmp_path: Path) -> tuple[Path, Path, float]:
    """The real recording with its samples zeroed, and scaled by 8 and clipped at full scale (16-bit)."""
    data, rate = sf.read(realdata / "audio" / CLIP, dtype="float32")
    silent, clipped = tmp_path / "silent.wav", tmp_path / "clipped.wav"
    sf.write(silent, np.zeros_like(data), rate, subtype="PCM_16")
    sf.write(clipped, np.clip(8 * data, -1.0, 1.0), rate, subtype="PCM_16")
    written, _ = sf.read(clipped, dtype="float32")
    mono = written if written.ndim == 1 else written.mean(axis=1)
    return silent, clipped, float(np.count_nonzero(np.abs(mono) >= CLIP_LEVEL) / mono.size)


def test_a_silent_file_makes_no_search(make_app, built_atlas: Path, bundle_path: Path,
                                       silent_and_clipped: tuple[Path, Path, float]) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    silent, _, _ = silent_and_clipped
    h.window.open_audio_file(silent)
    h.wait_idle()
    result = h.state.query.result
    assert result is not None and not result.searched and result.top == []
    panel = h.window.search
    assert h.window.map.heat_values is None  # no heat map
    assert panel.gallery.indices == []  # no best match
    assert panel.gallery_title.text() == "This clip is silent (peak -120 dBFS): no search was made"
    assert h.window.banner.level == "warning"
    assert h.window.banner.label.text() == "silent.wav: this clip is silent (peak -120 dBFS): no search was made"
    assert not h.state.last_message.text.startswith("Best match")
    # Silence is drawn at the bottom of the absolute scale (the front-end's floor is -100 dB).
    assert float(panel.query_view.data.max()) <= LEVELS_DB[0]
    assert tuple(panel.query_view.image.getLevels()) == LEVELS_DB  # not stretched to the clip's own range
    assert tuple(panel.query_view.colour_bar.levels()) == LEVELS_DB
    assert panel.meter.peak_db == -60.0  # the meter's floor: nothing


def test_a_clipped_file_is_searched_with_a_warning(make_app, built_atlas: Path, bundle_path: Path,
                                                   silent_and_clipped: tuple[Path, Path, float]) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    _, clipped, fraction = silent_and_clipped
    assert fraction > 1e-3
    h.window.open_audio_file(clipped)
    h.wait_idle()
    result = h.state.query.result
    assert result.searched and len(result.top) > 0
    panel = h.window.search
    assert panel.gallery.indices  # the search was made
    assert result.levels.clipped_fraction == pytest.approx(fraction, rel=1e-6)
    warning = f"this clip is clipped ({100 * fraction:.1f} % of the samples at full scale); lower the input gain"
    assert panel.warning_label.text() == warning and not panel.warning_label.isHidden()
    assert h.window.banner.label.text() == f"clipped.wav: {warning}"
    assert panel.meter.clipping
    assert tuple(panel.query_view.image.getLevels()) == LEVELS_DB  # the same absolute scale as silence
    assert float(panel.query_view.data.max()) > 0.0  # a loud clip reaches the upper half of the scale


def test_a_silent_recording_makes_no_search(make_app, built_atlas: Path, bundle_path: Path) -> None:
    h = make_app(backend=FakeAudioBackend())
    h.open(built_atlas, bundle_path)
    h.controller.audio.open_stream = lambda d, r, cb: FakeInputStream(np.zeros(4 * r, np.float32), cb, rate=r)
    panel = h.window.search
    panel.max_seconds.setValue(2)
    h.window.start_recording()
    assert h.state.audio.session is not None and panel.session is h.state.audio.session
    h.qtbot.waitUntil(lambda: not h.state.audio.recording, timeout=20000)
    h.wait_idle()
    result = h.state.query.result
    assert result is not None and result.source == "microphone" and not result.searched
    assert result.levels.silent and panel.gallery.indices == []
    assert h.window.map.heat_values is None
    assert h.window.banner.label.text() == "The recording: this clip is silent (peak -120 dBFS): no search was made"
    assert panel.session is None and panel.record_button.text() == "● Record"
