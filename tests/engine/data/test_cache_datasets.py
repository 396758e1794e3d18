"""The decode cache and the PyTorch datasets: sample keys, crops, unreadable files, seeded order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.config.data import DataConfig
from engine.config.run import load_preset
from engine.data.cache import fingerprint, open_cache
from engine.data.datasets import EpochBatchSampler, PairDataset, collate_pairs
from engine.data.source import open_source
from engine.train.data import open_run_data
from tests.engine.fixtures import SoundingEarthFixture, make_pair_table, make_soundingearth

SAMPLE_KEYS = {"image", "audio", "lon", "lat", "key", "index"}


@pytest.fixture(scope="module")
def se(tmp_path_factory: pytest.TempPathFactory) -> SoundingEarthFixture:
    return make_soundingearth(tmp_path_factory.mktemp("soundingearth"))


def test_cache_counts_unreadable_files_and_matches_direct_decoding(se: SoundingEarthFixture, tmp_path: Path) -> None:
    cfg = DataConfig(audio_source="spectrogram", image_region=0.75, stored_size=64)
    source = open_source(se.root, cfg)
    cache = open_cache(source, tmp_path / "cache", workers=1)
    keys = [r.key for r in source.records]
    bad = {keys.index(str(se.corrupt_image)): "unreadable image", keys.index(str(se.truncated_spectrogram)):
           "unreadable audio"}
    for i, error in enumerate(cache.errors):
        assert (error is None) == (i not in bad)
        if i in bad:
            assert error.startswith(bad[i])
    good = next(i for i in range(len(source)) if i not in bad)
    np.testing.assert_array_equal(cache.image(good), source.image(good))
    np.testing.assert_allclose(cache.log_mel(good), source.log_mel(good), atol=4e-3)  # float16 storage
    assert not cache.truncated(good)
    # A second open finds the same folder; a change of image size is another cache.
    assert open_cache(source, tmp_path / "cache").folder == cache.folder
    other = open_source(se.root, DataConfig(audio_source="spectrogram", image_region=0.75, stored_size=32))
    assert fingerprint(other) != fingerprint(source)


def test_run_data_adds_unreadable_files_to_the_summary(se: SoundingEarthFixture, tmp_path: Path) -> None:
    cfg = load_preset("tiny").replace("data", audio_source="spectrogram")
    data = open_run_data(se.root, cfg, cache_root=tmp_path / "cache")
    assert data.report.counts == {"missing image": 1, "bad coordinates": 1, "unreadable image": 1,
                                  "unreadable audio": 1}
    assert data.report.describe() == ("12 rows: 8 usable, 1 bad coordinates, 1 missing image, 1 unreadable image, "
                                      "1 unreadable audio")
    assert sum(len(v) for v in data.splits.values()) == 8


def test_direct_dataset_skips_an_unreadable_pair_within_a_batch(se: SoundingEarthFixture) -> None:
    source = open_source(se.root, DataConfig(audio_source="spectrogram", stored_size=48))
    dataset = PairDataset(source, source.records, range(len(source)), crop_frames=50, seed=3)
    assert len(dataset) == 10
    samples = [dataset[i] for i in range(len(dataset))]
    errors = [s for s in samples if "error" in s]
    assert sorted(s["reason"] for s in errors) == ["unreadable audio", "unreadable image"]
    batch = collate_pairs(samples)
    assert batch["size"] == 8 and len(batch["skipped"]) == 2
    assert batch["image"].shape == (8, 3, 48, 48) and batch["image"].dtype == torch.uint8
    assert batch["audio"].shape == (8, 1, 128, 50) and batch["audio"].dtype == torch.float32
    good = next(s for s in samples if "error" not in s)
    assert set(good) == SAMPLE_KEYS
    record = source.records[good["index"]]
    assert (good["lon"], good["lat"], good["key"]) == (record.lon, record.lat, record.key)


def test_training_crops_are_windows_of_the_clip_and_seeded(tmp_path: Path) -> None:
    make_pair_table(tmp_path / "pairs", n=8, seconds=2.0)
    source = open_source(tmp_path / "pairs")
    whole = PairDataset(source, source.records, range(8))[2]["audio"][0]
    crops = PairDataset(source, source.records, range(8), crop_frames=30, seed=5)
    crop = crops[2]["audio"][0]
    # The crop is some window of the whole clip.
    starts = [s for s in range(whole.shape[1] - 29) if torch.equal(whole[:, s:s + 30], crop)]
    assert len(starts) == 1
    assert torch.equal(crops[2]["audio"], crop[None])  # same seed and epoch: same crop
    crops.set_epoch(1)
    assert not torch.equal(crops[2]["audio"][0], crop)
    assert torch.equal(crops[(2, 0)]["audio"][0], crop)  # the epoch named with the position wins
    # A clip shorter than the crop is repeated to fill it.
    long_crop = PairDataset(source, source.records, range(8), crop_frames=whole.shape[1] + 10)[2]["audio"][0]
    assert torch.equal(long_crop[:, whole.shape[1]:], whole[:, :10])


def test_epoch_sampler_is_a_seeded_permutation_that_can_start_mid_epoch() -> None:
    sampler = EpochBatchSampler(23, 5, seed=7)
    sampler.set_epoch(3)
    batches = list(sampler)
    assert len(batches) == 4 and all(len(b) == 5 for b in batches)  # the last 3 are dropped
    assert len({p for b in batches for p, _ in b}) == 20 and {e for b in batches for _, e in b} == {3}
    sampler.set_epoch(3, start_batch=2)
    assert list(sampler) == batches[2:] and len(sampler) == 2
    sampler.set_epoch(4)
    assert list(sampler) != batches
