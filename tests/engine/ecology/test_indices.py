"""Acoustic indices agree with scikit-maad's own functions on the real recordings; undefined stays NaN."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.cli import main
from engine.ecology.indices import IndexParameters, recording_indices
from engine.ecology.maps import hourly_profile_of_recordings
from engine.ecology.table import read_indices_csv

# our column -> (scikit-maad's all_* table, its column)
MAAD_COLUMNS = {"ACI": "ACI", "ADI": "ADI", "AEI": "AEI", "BI": "BI", "NDSI": "NDSI", "Hf": "Hf", "rBA": "rBA",
                "anthropophony_energy": "AnthroEnergy", "biophony_energy": "BioEnergy", "Ht": "Ht"}


def maad_reference(path: Path, start: float | None = None, stop: float | None = None) -> dict[str, float]:
    """scikit-maad's values through its documented all-in-one functions, with the default parameters of
    IndexParameters spelled out here."""
    from maad import features, sound

    s, fs = sound.load(str(path))  # normalised to [-1, 1], mean removed (detrend=True)
    if start is not None:
        s = s[int(start * fs):int(stop * fs)]
        s = s - s.mean()
    sxx, tn, fn, _ = sound.spectrogram(s, fs, window="hann", nperseg=1024, noverlap=512)
    spectral, _ = features.all_spectral_alpha_indices(sxx, tn, fn, flim_low=[0, 1000], flim_mid=[1000, 10000],
                                                      R_compatible="soundecology", bin_step=1000,
                                                      ADI_dB_threshold=-50, AEI_dB_threshold=-50)
    temporal = features.all_temporal_alpha_indices(s, fs, compatibility="QUT", mode="fast", Nt=512)
    both = {**spectral.iloc[0].to_dict(), **temporal.iloc[0].to_dict()}
    return {ours: float(both[theirs]) for ours, theirs in MAAD_COLUMNS.items()}


@pytest.fixture(scope="module")
def references(real_audio: list[Path]) -> dict[str, dict[str, float]]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {path.name: maad_reference(path) for path in real_audio}


@pytest.fixture(scope="module")
def real_table(tmp_path_factory: pytest.TempPathFactory, real_audio: list[Path]) -> Path:
    folder = tmp_path_factory.mktemp("real_csv")
    assert main(["indices", "--recordings", str(real_audio[0].parent), "--out", str(folder / "indices.csv")]) == 0
    return folder / "indices.csv"


@pytest.mark.filterwarnings("ignore")
def test_indices_agree_with_scikit_maad_on_the_real_recordings(real_table: Path, real_audio: list[Path],
                                                               references: dict) -> None:
    rows = {row["id"]: row for row in read_indices_csv(real_table)}
    for path in real_audio:
        ours, reference = rows[path.name], references[path.name]
        for name, value in reference.items():
            assert ours[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (path.name, name)
        assert ours["windows"] == "1" and ours["sample_rate"] == "22000"
    meta = json.loads(real_table.with_suffix(".json").read_text())
    assert meta["parameters"]["biophony_hz"] == [1000.0, 10000.0] and meta["library"].startswith("scikit-maad")
    assert meta["computed"] == 13 and meta["skipped"] == []


@pytest.mark.filterwarnings("ignore")
def test_the_24_hour_profile_equals_scikit_maad_hour_by_hour(real_table: Path, real_audio: list[Path],
                                                             references: dict) -> None:
    rows = [r for r in read_indices_csv(real_table) if r["id"].startswith("S4A03895")]
    for name in ("ACI", "NDSI", "Ht", "Hf", "BI"):
        profile = hourly_profile_of_recordings([r["hour"] for r in rows], [r[name] for r in rows])
        expected = np.full(24, np.nan)
        for path in real_audio:  # the hour read here from the name: S4A03895_20190522_HHMMSS
            expected[int(path.stem.split("_")[2][:2])] = references[path.name][name]
        np.testing.assert_allclose(profile.values, expected, rtol=1e-9, equal_nan=True)
        assert profile.counts.sum() == 12 and set(np.flatnonzero(profile.counts)) == {0, 2, 4, 5, 6, 7, 8, 10, 12,
                                                                                      16, 20, 22}


@pytest.mark.filterwarnings("ignore")
def test_long_recordings_are_analysed_window_by_window(tmp_path: Path, realdata: Path) -> None:
    spinetail = realdata / "audio" / "spinetail.wav"  # 19.5 s at 44.1 kHz
    result = recording_indices(spinetail, IndexParameters(), window_s=5.0)
    assert [w.start_s for w in result.windows] == [0.0, 5.0, 10.0]  # the 4.5 s tail is left out
    for w in result.windows:
        reference = maad_reference(spinetail, w.start_s, w.start_s + 5.0)
        for name in ("ACI", "NDSI", "Hf", "Ht", "ADI"):
            assert w.values[name] == pytest.approx(reference[name], rel=1e-9), name
    mean = result.summary("mean")["ACI"]
    assert mean == pytest.approx(np.mean([w.values["ACI"] for w in result.windows]))
    assert result.summary("median")["NDSI"] == pytest.approx(np.median([w.values["NDSI"] for w in result.windows]))


def test_silent_short_low_rate_and_clipped_recordings(tmp_path: Path, realdata: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    rate = 22050
    sf.write(folder / "silent.wav", np.zeros(rate * 3), rate, subtype="PCM_16")
    sf.write(folder / "short.wav", np.random.default_rng(0).normal(0, 0.1, 1000), rate, subtype="PCM_16")
    sf.write(folder / "narrow.wav", np.random.default_rng(1).normal(0, 0.1, 16000 * 2), 16000, subtype="PCM_16")
    loud = np.clip(np.random.default_rng(2).normal(0, 1.0, rate * 2), -1, 1)
    sf.write(folder / "clipped.wav", loud, rate, subtype="FLOAT")
    (folder / "broken.wav").write_bytes(b"RIFF....not audio")
    out = tmp_path / "out" / "bad.csv"
    assert main(["indices", "--recordings", str(folder), "--out", str(out)]) == 0
    with open(out, newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert rows["silent.wav"]["ACI"] == "" and rows["silent.wav"]["NDSI"] == "" and rows["silent.wav"]["note"] == "silent"
    assert "shorter than the indices need" in rows["short.wav"]["skipped"] and rows["short.wav"]["ACI"] == ""
    assert "below 20000 Hz" in rows["narrow.wav"]["skipped"]
    assert rows["clipped.wav"]["note"] == "clipped" and math.isfinite(float(rows["clipped.wav"]["ACI"]))
    assert "broken.wav" in rows["broken.wav"]["skipped"] and rows["broken.wav"]["ACI"] == ""
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["computed"] == 2 and {s["id"] for s in meta["skipped"]} == {"short.wav", "narrow.wav", "broken.wav"}


def test_bad_options_and_unwritable_output_are_one_line(tmp_path: Path, real_audio: list[Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["indices", "--recordings", str(real_audio[0]), "--out", str(blocker / "i.csv")]) == 2
    err = capsys.readouterr().err.strip().split("\r")[-1].splitlines()[-1]  # after the progress bar
    assert err.startswith("error: ") and "cannot be written" in err and "Traceback" not in err
    assert main(["indices", "--recordings", str(tmp_path / "missing"), "--out", str(tmp_path / "i.csv")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["indices", "--recordings", str(real_audio[0].parent), "--out", str(tmp_path / "i.txt")]) == 2
    assert not (tmp_path / "i.csv").exists()
