"""Retrieval metrics: the reference implementation's outputs and hand-computed cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.evaluate import haversine_km, recall_curve, retrieval_metrics

KM_PER_DEGREE = 6371.0 * math.pi / 180.0


def test_reference_cases(reference_dir: Path) -> None:
    cases = json.loads((reference_dir / "soundingearth_reference_cases.json").read_text())["retrieval"]
    for case in cases:
        result = retrieval_metrics(case["image_embeddings"], case["audio_embeddings"], case["longitude"],
                                   case["latitude"], protocol="paper")
        assert result.gallery == len(case["keys"])
        for ref, got in ((case["img2sound"], result.image_to_audio), (case["sound2img"], result.audio_to_image)):
            np.testing.assert_allclose(got.ranks, ref["rank"], rtol=0, atol=1e-9)
            np.testing.assert_allclose(got.km_at[10], ref["km@10"], rtol=1e-7, atol=1e-6)
            for k in (100, 500, 1000):
                assert got.metrics[f"paper_R@{k}"] == pytest.approx(ref[f"R@{k}"], abs=1e-12)
                # The usual top-k count, from the reference's own ranks.
                assert got.metrics[f"R@{k}"] == pytest.approx(np.mean(np.array(ref["rank"]) <= k), abs=1e-12)
            assert got.metrics["median_rank"] == ref["median_rank"]
            assert got.metrics["D@100_km"] == pytest.approx(ref["D@100_km"], rel=1e-7)
            assert got.metrics["D@1000_km"] == pytest.approx(ref["D@1000_km"], rel=1e-7, abs=1e-9)


def test_ranks_with_ties_by_hand() -> None:
    # 1-D embeddings. Image->sound, plain L2: image 1 (at 1) sees sounds at 0, 2, 1, 3.5 -> distances
    # 1, 1, 0, 2.5; its partner (sound 1, distance 1) has one closer and one equal: rank 1 + (2+1)/2 = 2.5.
    img = np.array([[0.0], [1.0], [2.0], [3.0]])
    snd = np.array([[0.0], [2.0], [1.0], [3.5]])
    lon, lat = np.zeros(4), np.arange(4.0)
    r = retrieval_metrics(img, snd, lon, lat, protocol="plain", distance_ks=(1, 2))
    # image 0: d = 0, 2, 1, 3.5 -> rank 1; image 2: d = 2, 0, 1, 1.5, partner d 1 -> rank 2;
    # image 3: d = 3, 1, 2, 0.5 -> partner 0.5 -> rank 1.
    np.testing.assert_array_equal(r.image_to_audio.ranks, [1.0, 2.5, 2.0, 1.0])
    # Sound->image: sound 1 (at 2) sees images 0..3 at 2, 1, 0, 1 -> partner (image 1) d 1, one closer,
    # one equal -> 2.5; sound 2 (at 1): 1, 0, 1, 2 -> partner image 2 d 1, one closer, one equal -> 2.5;
    # sound 3 (at 3.5): 3.5, 2.5, 1.5, 0.5 -> 1.
    np.testing.assert_array_equal(r.audio_to_image.ranks, [1.0, 2.5, 2.5, 1.0])
    m = r.image_to_audio.metrics
    assert m["R@1"] == 0.5 and m["paper_R@1"] == 0.0 and m["R@5"] == 1.0
    assert m["median_rank"] == 1.5 and m["mean_rank"] == pytest.approx(6.5 / 4)
    # D@1: the top result of image 1 is sound 2 (d 0), one degree of latitude away; the others hit
    # their own location (image 2's top is sound 1, lat 1 vs 2: one degree too).
    np.testing.assert_allclose(r.image_to_audio.km_at[1], [0, KM_PER_DEGREE, KM_PER_DEGREE, 0], rtol=1e-9)
    assert m["D@1_km"] == pytest.approx(KM_PER_DEGREE / 2, rel=1e-9)
    # D@2: image 1's top two are sound 2 (d 0) and, of the tied sounds 0 and 1 (d 1), the earlier one
    # (pandas' nsmallest keeps the first): sound 0 at latitude 0, one degree from image 1 again.
    np.testing.assert_allclose(r.image_to_audio.km_at[2], [0, KM_PER_DEGREE, 0, 0], rtol=1e-9)


def test_paper_protocol_demotes_a_hub_image() -> None:
    # Image 0 sits near every sound (a "hub"); sound 1's true image is 1 but image 0 is closer.
    img = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 10.0]])
    snd = np.array([[0.5, 0.0], [2.0, 0.0], [0.0, 9.0]])
    lonlat = np.zeros(3), np.zeros(3)
    plain = retrieval_metrics(img, snd, *lonlat, protocol="plain")
    paper = retrieval_metrics(img, snd, *lonlat, protocol="paper")
    # Plain: sound 1 (at 2,0) -> images at distances 2, 1, 10.2: partner (image 1, d 1) is first.
    # Take sound 0 (at .5,0): distances .5, 2.5, 10.01 -> rank 1. Sound 2: 9, 9.49, 1 -> rank 1.
    np.testing.assert_array_equal(plain.audio_to_image.ranks, [1, 1, 1])
    # Paper: each image column is divided by its mean over the sounds:
    d = np.sqrt(((snd[:, None, :] - img[None, :, :]) ** 2).sum(-1))
    normed = d / d.mean(axis=0, keepdims=True)
    expected = [1 + (normed[i] < normed[i, i]).sum() for i in range(3)]
    np.testing.assert_array_equal(paper.audio_to_image.ranks, expected)
    # Image->sound ranks one column, so a per-column factor cannot change it.
    np.testing.assert_array_equal(paper.image_to_audio.ranks, plain.image_to_audio.ranks)


def test_perfect_and_reversed_retrieval() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 16))
    lon, lat = rng.uniform(-180, 180, 200), rng.uniform(-80, 80, 200)
    perfect = retrieval_metrics(z, z, lon, lat)
    for d in (perfect.image_to_audio, perfect.audio_to_image):
        assert d.metrics["R@1"] == 1.0 and d.metrics["median_rank"] == 1.0 and d.metrics["D@10_km"] == 0.0
        assert d.metrics["R@10%"] == 1.0 and d.metrics["paper_R@1"] == 0.0
    # Sounds shifted by one row: each partner is a random item, so ranks spread over the gallery.
    shuffled = retrieval_metrics(z, np.roll(z, 1, axis=0), lon, lat, protocol="plain")
    assert 60 < shuffled.image_to_audio.metrics["median_rank"] < 140


def test_haversine_known_distances() -> None:
    assert haversine_km(0, 0, 1, 0) == pytest.approx(KM_PER_DEGREE, rel=1e-12)
    assert haversine_km(0, 89.0, 180, 89.0) == pytest.approx(2 * KM_PER_DEGREE, rel=1e-9)  # over the pole
    assert haversine_km(-180, 0, 180, 0) == pytest.approx(0.0, abs=1e-9)


def test_recall_curve_counts_rank_at_most_k() -> None:
    ks, recall = recall_curve(np.array([1, 1, 2, 5, 10.5]), gallery=10, points=10)
    assert list(ks) == list(range(1, 11))
    np.testing.assert_allclose(recall, [0.4, 0.6, 0.6, 0.6, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8])


def test_bad_shapes_and_protocol() -> None:
    with pytest.raises(ValueError, match="protocol"):
        retrieval_metrics(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(3), np.zeros(3), protocol="fair")
    with pytest.raises(ValueError, match="need N paired rows"):
        retrieval_metrics(np.zeros((3, 2)), np.zeros((4, 2)), np.zeros(3), np.zeros(3))
