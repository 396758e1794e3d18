"""The audio front-end against independent computations (librosa, soxr) on real recordings."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from engine.audio import (
    FrontEndConfig,
    StreamingLogMel,
    chunk_log_mel,
    chunk_spans,
    file_log_mel,
    load_audio,
    log_mel_db,
    normalise,
    probe_audio,
    samples_log_mel,
)
from engine.cli import main
from engine.errors import AudioFileError

CFG = FrontEndConfig()


def librosa_log_mel(y: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """The same log-mel computed by librosa directly (an independent path)."""
    power = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                           n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.f_max,
                                           center=True, pad_mode="constant")
    return librosa.power_to_db(power, ref=1.0, amin=10 ** (cfg.db_floor / 10), top_db=None)


@pytest.fixture(scope="module")
def forest(realdata: Path) -> Path:
    return realdata / "audio" / "S4A03895_20190522_060000.wav"


@pytest.fixture(scope="module")
def spinetail(realdata: Path) -> Path:
    return realdata / "audio" / "spinetail.wav"


def test_decodes_real_recordings_at_their_rate(forest: Path, spinetail: Path) -> None:
    y, rate = load_audio(forest)
    assert rate == 22000 and y.shape == (220000,) and y.dtype == np.float32
    reference, _ = sf.read(forest, dtype="float32")
    np.testing.assert_array_equal(y, reference)
    y2, rate2 = load_audio(spinetail)
    assert rate2 == 44100 and abs(y2.size / rate2 - 19.54) < 0.01


def test_resampling_matches_librosa(forest: Path) -> None:
    native, _ = load_audio(forest)
    ours, rate = load_audio(forest, sample_rate=22050)  # streamed through soxr in blocks
    theirs = librosa.resample(native, orig_sr=22000, target_sr=22050, res_type="soxr_hq")
    assert rate == 22050 and ours.size == theirs.size == 220500
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_log_mel_matches_librosa(forest: Path, spinetail: Path) -> None:
    for path in (forest, spinetail):
        y, _ = load_audio(path, sample_rate=CFG.sample_rate)
        theirs = librosa_log_mel(y, CFG)
        ours = file_log_mel(path, CFG, normalised=False)
        assert ours.shape == theirs.shape == (128, 1 + y.size // CFG.hop_length)
        np.testing.assert_allclose(ours, theirs, atol=0.01)  # dB; float32 FFT rounding only


def test_streaming_in_small_pieces_equals_whole(spinetail: Path) -> None:
    y, _ = load_audio(spinetail, sample_rate=CFG.sample_rate)
    stream = StreamingLogMel(CFG)
    rng = np.random.default_rng(0)
    parts, pos = [], 0
    while pos < y.size:  # ragged pieces, as a microphone callback delivers them
        n = int(rng.integers(1, 5000))
        parts.append(stream.push(y[pos:pos + n]))
        pos += n
    parts.append(stream.finish())
    np.testing.assert_allclose(np.concatenate(parts, axis=1), log_mel_db(y, CFG), atol=1e-4)


def test_mp3_and_stereo_flac_decode_to_the_same_signal(tmp_path: Path, spinetail: Path) -> None:
    y, rate = load_audio(spinetail)
    stereo = np.stack([y, y], axis=1)
    sf.write(tmp_path / "clip.flac", stereo, rate, subtype="PCM_16")
    sf.write(tmp_path / "clip.mp3", y, rate)
    flac, _ = load_audio(tmp_path / "clip.flac")
    assert probe_audio(tmp_path / "clip.flac").channels == 2
    np.testing.assert_allclose(flac, y, atol=2 / 32768)  # 16-bit quantisation of the mono mix
    mp3, _ = load_audio(tmp_path / "clip.mp3")
    # MP3 adds encoder delay and loses high-frequency detail: compare the aligned log-mels.
    ref_mel, mp3_mel = (normalise(log_mel_db(librosa.resample(s, orig_sr=rate, target_sr=CFG.sample_rate), CFG), CFG)
                        for s in (y, mp3))
    n = min(ref_mel.shape[1], mp3_mel.shape[1])
    corr = max(np.corrcoef(ref_mel[:100, :n - lag].ravel(), mp3_mel[:100, lag:n].ravel())[0, 1] for lag in range(4))
    assert corr > 0.97
    assert abs(mp3.size - y.size) < 0.1 * rate


def test_gain_change_gives_nearly_the_same_normalised_log_mel(forest: Path) -> None:
    y, rate = load_audio(forest)
    quiet = y * 10 ** (-20 / 20)
    a = samples_log_mel(y, rate, CFG)
    b = samples_log_mel(quiet, rate, CFG)
    assert abs(float(a.mean())) < 1e-4 and abs(float(a.std()) - 1) < 1e-3
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_chunk_rule() -> None:
    size, hop = CFG.chunk_frames, CFG.chunk_hop_frames
    assert size == round(5 * 22050 / 512) and hop == size
    assert chunk_spans(50, CFG) == [(0, 50)]                       # shorter than a chunk: whole
    assert chunk_spans(size, CFG) == [(0, size)]
    assert chunk_spans(2 * size + size // 2 + 1, CFG)[-1] == (size + size // 2 + 1, 2 * size + size // 2 + 1)
    assert chunk_spans(2 * size + 3, CFG) == [(0, size), (size, 2 * size)]  # a tiny remainder is dropped
    many = chunk_spans(size * 1000, CFG)
    assert len(many) == CFG.max_chunks and many[0] == (0, size) and many[-1][1] == size * 1000
    mel = np.arange(128 * 3 * size, dtype=np.float32).reshape(128, 3 * size)
    batch = chunk_log_mel(mel, CFG)
    assert batch.shape == (3, 1, 128, size)
    np.testing.assert_array_equal(batch[1, 0], mel[:, size:2 * size])


def test_config_round_trip_and_validation() -> None:
    assert FrontEndConfig.from_dict(CFG.to_dict()) == CFG
    with pytest.raises(ValueError, match="unknown keys"):
        FrontEndConfig.from_dict({**CFG.to_dict(), "hop": 3})
    with pytest.raises(ValueError, match="f_min/f_max"):
        FrontEndConfig(f_max=20000.0)


# ------------------------------------------------------------------------------------- bad input

@pytest.fixture()
def bad_files(tmp_path: Path, spinetail: Path) -> dict[str, Path]:
    y, rate = load_audio(spinetail)
    files = {}
    files["empty"] = tmp_path / "empty.wav"
    files["empty"].write_bytes(b"")
    files["not_audio"] = tmp_path / "notes.wav"
    files["not_audio"].write_text("these are field notes, not audio " * 50)
    sf.write(tmp_path / "whole.wav", y, rate, subtype="PCM_16")
    sf.write(tmp_path / "whole.flac", y, rate, subtype="PCM_16")
    for ext in ("wav", "flac"):
        data = (tmp_path / f"whole.{ext}").read_bytes()
        files[f"truncated_{ext}"] = tmp_path / f"truncated.{ext}"
        files[f"truncated_{ext}"].write_bytes(data[: len(data) // 2])
    files["nan"] = tmp_path / "nan.wav"
    sf.write(files["nan"], np.where(np.arange(rate) == 500, np.nan, 0.1).astype(np.float32), rate, subtype="FLOAT")
    files["inf"] = tmp_path / "inf.wav"
    sf.write(files["inf"], np.where(np.arange(rate) == 9, np.inf, 0.1).astype(np.float32), rate, subtype="FLOAT")
    files["short"] = tmp_path / "short.wav"
    sf.write(files["short"], y[: int(0.05 * rate)], rate)
    files["unknown_ext"] = tmp_path / "clip.xyz"
    files["unknown_ext"].write_bytes((tmp_path / "whole.wav").read_bytes())
    files["missing"] = tmp_path / "missing.wav"
    files["folder"] = tmp_path / "folder.wav"
    files["folder"].mkdir()
    return files


@pytest.mark.parametrize("kind, message", [
    ("empty", "file is empty"),
    ("not_audio", "not a readable audio file"),
    ("truncated_wav", "truncated: the header promises 19.54 s"),
    ("truncated_flac", "truncated or corrupt"),
    ("nan", "NaN or infinite"),
    ("inf", "NaN or infinite"),
    ("short", "clip too short (0.05 s)"),
    ("unknown_ext", "unsupported extension '.xyz'"),
    ("missing", "file not found"),
    ("folder", "is a folder"),
])
def test_bad_input_gives_one_line_naming_the_file(bad_files: dict[str, Path], kind: str, message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = bad_files[kind]
    with pytest.raises(AudioFileError) as err:
        file_log_mel(path, CFG)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text and "; " in text
    # The CLI answers with the same single line and exit status 2, no traceback.
    assert main(["audio-info", str(path)]) == 2
    err_text = capsys.readouterr().err
    assert err_text.count("\n") == 1 and message in err_text and "Traceback" not in err_text


def test_silence_has_a_defined_spectrogram(tmp_path: Path) -> None:
    path = tmp_path / "silence.flac"
    sf.write(path, np.zeros(3 * 44100, np.float32), 44100)
    mel = file_log_mel(path, CFG)
    assert mel.shape == (128, 1 + 3 * 22050 // 512)
    assert np.all(mel == 0.0)  # documented: digital silence normalises to zeros, not NaN
    raw = file_log_mel(path, CFG, normalised=False)
    np.testing.assert_allclose(raw, CFG.db_floor, atol=1e-3)


def test_cli_describes_a_real_file(spinetail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audio-info", "--json", str(spinetail)]) == 0
    import json
    row = json.loads(capsys.readouterr().out)
    assert row["sample_rate"] == 44100 and row["log_mel_shape"] == [128, 1 + round(19.541 * 22050) // 512]
    assert row["chunks"] == 4  # 19.5 s: three 5 s chunks and one aligned to the end (4.5 s left over)


def test_own_mel_filterbank_and_window_equal_librosa_and_scipy() -> None:
    from scipy.signal import get_window

    from engine.audio.front_end import _window, mel_filterbank
    for cfg in (CFG, FrontEndConfig(sample_rate=16000, n_fft=1024, n_mels=64, f_min=20.0, f_max=7600.0)):
        theirs = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels,
                                     fmin=cfg.f_min, fmax=cfg.f_max)
        np.testing.assert_allclose(mel_filterbank(cfg), theirs, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(_window(2048), get_window("hann", 2048, fftbins=True), atol=1e-7)


def test_normalise_agrees_with_numpy_and_leaves_its_input_alone() -> None:
    rng = np.random.default_rng(1)
    mel = (rng.standard_normal((128, 20000)) * 12 - 40).astype(np.float32)
    before = mel.copy()
    ours = normalise(mel, CFG)
    expected = (mel.astype(np.float64) - mel.mean(dtype=np.float64)) / mel.std(dtype=np.float64)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    np.testing.assert_array_equal(mel, before)


def test_soundingearth_exp_normalisation_is_their_encoding(spinetail: Path, tmp_path: Path) -> None:
    """``soundingearth_exp``: dB clipped to [-15, 5], then exp(x / 10), value by value; it inverts the
    SoundingEarth JPEG decoding; librosa's defaults (f_min 0) are accepted and match librosa."""
    from engine.data.soundingearth import decode_spectrogram_jpg, encode_spectrogram_jpg
    from engine.interop.conventions import soundingearth_front_end

    cfg = soundingearth_front_end()
    assert (cfg.chunk_frames, cfg.chunk_hop_frames, cfg.f_min) == (128, 128, 0.0)
    mel = np.random.default_rng(2).uniform(-40, 20, (128, 300)).astype(np.float32)
    expected = np.exp(np.clip(mel.astype(np.float64), -15, 5) / 10)
    np.testing.assert_allclose(normalise(mel, cfg), expected, rtol=1e-6)
    np.testing.assert_allclose(normalise(mel[:, :7], cfg), expected[:, :7], rtol=1e-6)  # no per-clip statistics
    from engine.audio.front_end import mel_filterbank

    theirs = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=0.0, fmax=cfg.f_max)
    np.testing.assert_allclose(mel_filterbank(cfg), theirs, rtol=1e-5, atol=1e-9)
    y, _ = load_audio(spinetail, cfg.sample_rate)
    ours = samples_log_mel(y, cfg.sample_rate, cfg)
    assert np.exp(-1.5) - 1e-6 <= ours.min() and ours.max() <= np.exp(0.5) + 1e-6
    pixels = np.arange(256, dtype=np.uint8).reshape(128, 2)
    path = tmp_path / "s.png"
    from PIL import Image

    Image.fromarray(pixels, mode="L").save(path)
    v = normalise(decode_spectrogram_jpg(path), cfg)
    np.testing.assert_allclose(v, pixels * ((np.exp(0.5) - np.exp(-1.5)) / 255) + np.exp(-1.5), rtol=1e-6)
    np.testing.assert_array_equal(encode_spectrogram_jpg(10 * np.log(v)), pixels)
