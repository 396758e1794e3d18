"""Audio that is not audio: float samples far outside [-1, 1] (around 1e17) and NaN samples are refused
with one line naming the file and the time of the first bad sample; `embed --json` never prints NaN, an
atlas never stores a NaN embedding, and the training data layer names the file. Also the wording of a
header-only WAV."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.atlas import build_atlas, open_atlas
from engine.audio import FrontEndConfig, file_log_mel, samples_log_mel
from engine.cli import main
from engine.errors import AudioFileError
from tests.engine.atlas.handmade import make_bundle

RATE = 22050
CFG = FrontEndConfig()


def _tone(seconds: float) -> np.ndarray:
    return (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def _huge_float_wav(path: Path, start_s: float = 1.5, seconds: float = 4.0) -> Path:
    """A valid float WAV whose samples from ``start_s`` are around 1e17 (what the issue fed in)."""
    y = _tone(seconds).astype(np.float64)
    y[int(start_s * RATE):] *= 5e17
    sf.write(path, y.astype(np.float32), RATE, subtype="FLOAT")
    return path


def _strict_json(text: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_out_of_range_float_samples_are_refused_naming_file_and_time(tmp_path: Path) -> None:
    path = _huge_float_wav(tmp_path / "huge.wav", start_s=1.5)
    with pytest.raises(AudioFileError) as caught:
        file_log_mel(path, CFG)
    text = str(caught.value)
    assert str(path) in text and "out of range from 1.50 s" in text and "not valid audio" in text
    assert "re-export it as 16- or 24-bit PCM" in text and "\n" not in text
    # the same rule for in-memory clips (the microphone path)
    with pytest.raises(AudioFileError, match="out of range from 1.50 s"):
        samples_log_mel(sf.read(path, dtype="float32")[0], RATE, CFG, source="recording")


def test_slightly_hot_float_audio_is_still_accepted(tmp_path: Path) -> None:
    path = tmp_path / "hot.wav"
    sf.write(path, 3.0 * _tone(2.0), RATE, subtype="FLOAT")  # +9.5 dB over full scale: clipped, but audio
    assert np.isfinite(file_log_mel(path, CFG)).all()


def test_nan_samples_are_reported_at_their_real_time(tmp_path: Path) -> None:
    y = _tone(10.0)
    y[int(0.05 * RATE)] = np.nan  # the file: 10 s long, NaN at 0.05 s, reported "near 10.0 s"
    path = tmp_path / "nan.wav"
    sf.write(path, y, RATE, subtype="FLOAT")
    with pytest.raises(AudioFileError) as caught:
        file_log_mel(path, CFG)
    assert "NaN or infinite samples from 0.05 s" in str(caught.value)


def test_embed_json_refuses_instead_of_printing_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path / "b")
    good = tmp_path / "good.wav"
    sf.write(good, _tone(2.0), RATE, subtype="FLOAT")
    huge = _huge_float_wav(tmp_path / "huge.wav")
    assert main(["embed", "--bundle", str(bundle.path), "--audio", str(good), "--json"]) == 0
    row = _strict_json(capsys.readouterr().out.strip())
    assert row["dim"] == 8 and all(np.isfinite(row["embedding"]))
    assert main(["embed", "--bundle", str(bundle.path), "--audio", str(huge), "--json"]) == 2
    captured = capsys.readouterr()
    assert "NaN" not in captured.out and captured.out.strip() == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and str(huge) in err[0] and "out of range" in err[0], err


def test_atlas_build_skips_and_counts_a_recording_that_is_not_audio(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    good = tmp_path / "good.wav"
    sf.write(good, _tone(2.0), RATE)
    huge = _huge_float_wav(tmp_path / "huge.wav")
    table = tmp_path / "pairs.csv"
    table.write_text(f"id,longitude,latitude,image,audio\ngood,10.0,50.0,,{good}\nhuge,10.1,50.1,,{huge}\n")
    report = build_atlas(tmp_path / "atlas", bundle.path, recordings=[table])
    assert report.recordings_added == 1 and report.skipped_count == 1
    assert any(str(huge) in line and "out of range" in line for line in report.skipped)
    atlas = open_atlas(tmp_path / "atlas")
    assert atlas.recordings.ids == ["good"] and np.isfinite(atlas.recordings.embeddings).all()
    entry = atlas.manifest["recording_tables"][0]
    assert entry["skipped"] == 1 and "out of range" in entry["skipped_examples"][0]


def test_atlas_build_never_stores_a_non_finite_embedding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the encoder returns, a NaN embedding is skipped with its reason, not stored."""
    from engine.inference.encoders import BundleEncoders

    bundle = make_bundle(tmp_path / "b")
    paths = []
    for name in ("a", "b"):
        paths.append(tmp_path / f"{name}.wav")
        sf.write(paths[-1], _tone(2.0), RATE)
    real = BundleEncoders.embed_audio_file

    def broken_for_b(self, path):
        emb = real(self, path)
        return np.full_like(emb, np.nan) if Path(path).name == "b.wav" else emb

    monkeypatch.setattr(BundleEncoders, "embed_audio_file", broken_for_b)
    table = tmp_path / "pairs.csv"
    table.write_text(f"id,longitude,latitude,image,audio\na,10.0,50.0,,{paths[0]}\nb,10.1,50.1,,{paths[1]}\n")
    report = build_atlas(tmp_path / "atlas", bundle.path, recordings=[table])
    assert report.recordings_added == 1 and any("b.wav" in s and "not finite" in s for s in report.skipped)
    assert np.isfinite(open_atlas(tmp_path / "atlas").recordings.embeddings).all()


def test_training_data_names_the_file_that_is_not_audio(tmp_path: Path) -> None:
    from engine.config.data import DataConfig
    from engine.data.source import open_source
    from tests.engine.fixtures import make_pair_table

    make_pair_table(tmp_path / "pairs", n=8)
    victim = tmp_path / "pairs" / "audio" / "p003.wav"
    _huge_float_wav(victim, start_s=0.5, seconds=1.3)
    source = open_source(tmp_path / "pairs", DataConfig(), CFG)
    index = next(i for i, r in enumerate(source.records) if r.key == "p003")
    with pytest.raises(AudioFileError) as caught:
        source.log_mel(index)
    assert str(victim) in str(caught.value) and "out of range from 0.50 s" in str(caught.value)


def _header_only_wav(path: Path, seconds: float = 10.0, channels: int = 1, rate: int = 44100) -> Path:
    """A 16-bit PCM WAV header announcing ``seconds`` of audio, and not one sample after it."""
    data_bytes = int(seconds * rate) * channels * 2
    header = (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " +
              struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16) +
              b"data" + struct.pack("<I", data_bytes))
    path.write_bytes(header)
    return path


def test_a_header_only_wav_says_it_holds_no_samples(tmp_path: Path) -> None:
    path = _header_only_wav(tmp_path / "header.wav", seconds=10.0)
    with pytest.raises(AudioFileError) as caught:
        file_log_mel(path, CFG)
    text = str(caught.value)
    assert "promises 10.00 s" in text and "holds no samples" in text and "holds 0.00 s" not in text
