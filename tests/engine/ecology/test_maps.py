"""Stored indices in the atlas, predicted maps and the 24-hour profile, on the real recordings."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine.atlas import open_atlas
from engine.ecology.atlas_indices import add_atlas_indices
from engine.ecology.maps import SoundscapePredictor, inverse_square_weights, nearest_rows, weighted_prediction
from engine.errors import AtlasError


def maad_aci_ndsi(path: Path) -> tuple[float, float]:
    """ACI and NDSI straight from scikit-maad's functions (its documented defaults, soundecology NDSI)."""
    from maad import features, sound

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s, fs = sound.load(str(path))
        sxx, _, fn, _ = sound.spectrogram(s, fs, nperseg=1024, noverlap=512)
        _, _, aci = features.acoustic_complexity_index(np.sqrt(sxx))
        ndsi, *_ = features.soundscape_index(sxx, fn, flim_bioPh=(1000, 10000), flim_antroPh=(0, 1000))
    return float(aci), float(ndsi)


def test_nearest_rows_and_weighted_prediction_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    tiles, recs = rng.normal(size=(300, 6)).astype(np.float32), rng.normal(size=(50, 6)).astype(np.float32)
    recs[7] = np.nan  # a recording that could not be embedded is never a neighbour
    brute = np.linalg.norm(tiles[:, None, :].astype(np.float64) - recs[None, :, :], axis=2)
    brute[:, 7] = np.inf
    idx, dist = nearest_rows(tiles, recs, 5)
    np.testing.assert_array_equal(idx, np.argsort(brute, axis=1)[:, :5])
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :5], rtol=1e-4)
    cos = 1 - (tiles / np.linalg.norm(tiles, axis=1, keepdims=True)) @ (recs / np.linalg.norm(recs, axis=1,
                                                                                              keepdims=True)).T
    cidx, _ = nearest_rows(tiles, recs, 3, "cosine")
    np.testing.assert_array_equal(cidx, np.argsort(np.where(np.isnan(cos), np.inf, cos), axis=1)[:, :3])
    # by hand: values 1, 3 and NaN with weights 1, 3, 5 -> mean (1 + 9) / 4, NaN left out
    mean, std = weighted_prediction(np.array([[0, 1, 2], [2, 2, 2]]), np.array([[1.0, 3.0, 5.0], [1, 1, 1]]),
                                    np.array([1.0, 3.0, np.nan]))
    assert mean[0] == pytest.approx(2.5) and std[0] == pytest.approx(np.sqrt((1 * 1.5**2 + 3 * 0.5**2) / 4))
    assert np.isnan(mean[1]) and np.isnan(std[1])  # no neighbour with a value: no value, never 0
    assert inverse_square_weights(np.array([np.inf]))[0] == 0


def test_atlas_stores_indices_by_recording_with_their_hours(real_atlas: Path, real_audio: list[Path]) -> None:
    atlas = open_atlas(real_atlas)
    manifest = json.loads((real_atlas / "atlas.json").read_text())
    assert manifest["format_version"] >= 2 and manifest["indices"]["parameters"]["nperseg"] == 1024
    ind = atlas.indices
    assert ind is not None and ind.computed.all() and len(ind.values) == len(real_audio)
    for i, path in enumerate(real_audio):
        assert atlas.recordings.paths[i] == str(path.resolve())
        aci, ndsi = maad_aci_ndsi(path)
        assert ind.column("ACI")[i] == pytest.approx(aci, rel=1e-9)
        assert ind.column("NDSI")[i] == pytest.approx(ndsi, rel=1e-9)
        assert ind.hour[i] == int(path.stem.split("_")[2][:2])
    shares = ind.values[:, [ind.names.index(n) for n in ("biophony_share", "anthropophony_share", "geophony_share")]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-9)
    assert add_atlas_indices(real_atlas).added == 0  # only recordings without indices are analysed


def test_predicted_layers_and_the_tile_24_hour_profile(real_atlas: Path, real_audio: list[Path]) -> None:
    atlas = open_atlas(real_atlas)
    predictor = SoundscapePredictor(atlas, k=4)
    layer = predictor.layer("ACI")
    assert layer.values.shape == (len(atlas.tiles),) and np.isfinite(layer.values).all()
    # a tile's prediction: the inverse-square weighted mean of its 4 nearest recordings, computed here
    tile = len(atlas.tiles) // 2
    emb, recs = np.asarray(atlas.tiles.embeddings[tile], np.float64), np.asarray(atlas.recordings.embeddings)
    d = np.linalg.norm(recs - emb, axis=1)
    near = np.argsort(d)[:4]
    w = 1 / (d[near] ** 2 + 1e-6)
    expected = np.sum(w * atlas.indices.column("ACI")[near]) / w.sum()
    assert layer.values[tile] == pytest.approx(expected, rel=1e-5)
    assert predictor.tile_values(tile)["ACI"][0] == pytest.approx(expected, rel=1e-5)
    # the 24-hour profile over every matching recording: one recording per hour, so each hour is that
    # recording's value, i.e. scikit-maad's value for the file of that hour
    profile = predictor.hourly_profile(tile, "NDSI", k=64)
    expected_profile = np.full(24, np.nan)
    for path in real_audio:
        expected_profile[int(path.stem.split("_")[2][:2])] = maad_aci_ndsi(path)[1]
    np.testing.assert_allclose(profile.values, expected_profile, rtol=1e-9, equal_nan=True)


def test_an_atlas_of_version_1_still_opens_without_indices(real_atlas: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(real_atlas, old)
    manifest = json.loads((old / "atlas.json").read_text())
    manifest["format_version"] = 1
    del manifest["indices"]
    (old / "atlas.json").write_text(json.dumps(manifest))
    atlas = open_atlas(old)
    assert atlas.indices is None and len(atlas.recordings) == 12
    with pytest.raises(AtlasError, match="atlas indices"):
        SoundscapePredictor(atlas)
    manifest["format_version"] = 9
    (old / "atlas.json").write_text(json.dumps(manifest))
    with pytest.raises(AtlasError, match="version 9 is not supported"):
        open_atlas(old)


def test_the_stored_neighbours_are_the_nearest_recordings_of_every_tile(real_atlas: Path) -> None:
    from engine.atlas.indices import read_neighbours
    from engine.ecology.maps import DEFAULT_K

    atlas = open_atlas(real_atlas)
    stored = read_neighbours(atlas, DEFAULT_K)
    assert stored is not None and stored[0].shape == (len(atlas.tiles), min(DEFAULT_K, len(atlas.recordings)))
    idx, dist = nearest_rows(np.asarray(atlas.tiles.embeddings), np.asarray(atlas.recordings.embeddings), DEFAULT_K)
    np.testing.assert_array_equal(stored[0], idx)
    np.testing.assert_allclose(stored[1], inverse_square_weights(dist), rtol=1e-5)
    assert read_neighbours(atlas, DEFAULT_K + 1) is None  # stored for another k: searched again


def test_atlas_build_with_recordings_stores_their_indices(tmp_path: Path, real_audio: list[Path], eco_bundle,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main
    from tests.engine.ecology.conftest import write_pair_table

    table = write_pair_table(tmp_path / "t", real_audio[:3], [(10.0, 50.0), (10.1, 50.0), (10.2, 50.0)])
    assert main(["atlas", "build", "--bundle", str(eco_bundle.path), "--out", str(tmp_path / "a"),
                 "--recordings", str(table)]) == 0
    ind = open_atlas(tmp_path / "a").indices
    assert ind is not None and ind.computed.all() and list(ind.hour) == [0.0, 2.0, 4.0]
    assert ind.column("ACI")[1] == pytest.approx(maad_aci_ndsi(real_audio[1])[0], rel=1e-9)
    assert main(["atlas", "build", "--bundle", str(eco_bundle.path), "--out", str(tmp_path / "b"),
                 "--recordings", str(table), "--no-indices"]) == 0
    assert open_atlas(tmp_path / "b").indices is None
    capsys.readouterr()
    assert main(["atlas", "export", "--atlas", str(tmp_path / "b"), "--layer", "ACI", "--format", "csv",
                 "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "holds no acoustic indices" in err and "atlas indices" in err and not (tmp_path / "x.csv").exists()
