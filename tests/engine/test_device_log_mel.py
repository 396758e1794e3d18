"""The device log-mel (torchaudio) against the torch-free front-end, and the nvJPEG prepare's raw-audio path.

Run here on CPU tensors; the same module runs on CUDA in ``prepare --decoder cuda`` (tests/engine/test_gpu_cuda.py
covers the device). Tolerance: 0.01 dB before normalisation on the real recordings (both compute the STFT in
float32; measured 0.005-0.007 dB), 0.001 after the per-clip standardisation.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.audio.front_end import FrontEndConfig, load_audio, log_mel_db, mel_filterbank, normalise
from engine.config.data import DataConfig
from engine.data.source import open_source
from engine.device_log_mel import DeviceLogMel, device_log_mels
from engine.shards.format import iter_shard
from engine.shards.plan import PrepareConfig, build_shard_cpu, plan_shards
from tests.engine.shards_fixture import make_soundingearth

DB_TOLERANCE = 0.01


def test_filterbank_is_the_front_ends() -> None:
    cfg = FrontEndConfig()
    module = DeviceLogMel(cfg)
    np.testing.assert_allclose(module.fbanks.numpy(), mel_filterbank(cfg), atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_real_recordings_match_the_front_end(realdata: Path, dtype: torch.dtype) -> None:
    cfg = FrontEndConfig()
    module = DeviceLogMel(cfg, dtype)
    for path in sorted((realdata / "audio").glob("*.wav")):
        samples, _ = load_audio(path, cfg.sample_rate)  # 22,000 Hz files: resampled on the host
        reference = log_mel_db(samples, cfg)
        got = module.db(torch.from_numpy(samples)).numpy()
        assert got.shape == reference.shape == (cfg.n_mels, 1 + samples.size // cfg.hop_length)
        assert np.abs(got - reference).max() <= DB_TOLERANCE, path.name
        np.testing.assert_allclose(module(torch.from_numpy(samples)).numpy(), normalise(reference, cfg), atol=1e-3)


def test_clips_of_different_lengths_in_one_call() -> None:
    cfg = FrontEndConfig()
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in (22050, 30000, 22050, 1000)]
    mels = device_log_mels([torch.from_numpy(c) for c in clips], DeviceLogMel(cfg))
    for clip, mel in zip(clips, mels, strict=True):
        np.testing.assert_allclose(mel.numpy(), normalise(log_mel_db(clip, cfg), cfg), atol=1e-3)


def test_silence_normalises_to_zeros_like_the_front_end() -> None:
    cfg = FrontEndConfig()
    mel = DeviceLogMel(cfg)(torch.zeros(5000))
    assert torch.equal(mel, torch.zeros_like(mel))
    assert np.array_equal(normalise(log_mel_db(np.zeros(5000, np.float32), cfg), cfg), mel.numpy())


def test_prepare_with_device_log_mels_stores_the_front_ends_log_mels(tmp_path: Path) -> None:
    """The nvJPEG prepare path (torchvision's CPU codec here) on SoundingEarth with raw recordings: log-mels
    computed by the device module equal the CPU prepare's front-end log-mels (stored as float16)."""
    from engine.shards.gpu_prepare import build_shards_cuda

    root = make_soundingearth(tmp_path / "SoundingEarth", rows=6, image_size=256)
    shutil.rmtree(root / "spectrograms")  # audio source 'auto' then means raw_audio
    rng = np.random.default_rng(1)
    with open(root / "metadata.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        folder = root / "raw_audio" / row["long_key"]
        folder.mkdir(parents=True)
        t = np.arange(int(16000 * (1.5 + 0.5 * i))) / 16000
        tone = 0.3 * np.sin(2 * np.pi * (400 + 150 * i) * t) + rng.normal(0, 0.01, t.size)
        sf.write(folder / row["mp3name"].replace(".mp3", ".wav"), tone.astype(np.float32), 16000)
        row["mp3name"] = row["mp3name"].replace(".mp3", ".wav")
    with open(root / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    data = DataConfig(stored_size=64, split_rule="paper")
    cfg = PrepareConfig(data=data, shard_size=2)
    source = open_source(root, data, cfg.front_end)
    assert source.audio_source == "raw"
    plans = plan_shards(source.records, source.splits, cfg)
    device_out, cpu_out = tmp_path / "device", tmp_path / "cpu"
    device_out.mkdir()
    cpu_out.mkdir()
    sidecars = dict(build_shards_cuda(plans, device_out, cfg, device="cpu", batch=4, processes=2))
    assert sum(s["count"] for s in sidecars.values()) + sum(
        len(k) for s in sidecars.values() for k in s["skipped"].values()) == len(source.records)
    compared = 0
    for plan in plans:
        build_shard_cpu(plan, cpu_out, cfg)
        reference = {s.key: s for s in iter_shard(cpu_out / plan.name)}
        for s in iter_shard(device_out / plan.name):
            assert s.mel.dtype == np.float16 and s.mel.shape == reference[s.key].mel.shape
            np.testing.assert_allclose(s.mel.astype(np.float32), reference[s.key].mel.astype(np.float32),
                                       atol=4e-3)  # float16 steps are 2e-3 near 2-4
            compared += 1
    assert compared >= 4


def test_decode_cache_with_a_log_mel_function_matches_the_workers_front_end(tmp_path: Path) -> None:
    """A CUDA run's decode cache: workers return samples, the device log-mel (CPU tensors here) makes the
    log-mels; the cache holds what the workers' front-end would have stored (float16 steps)."""
    from engine.data.cache import build_cache
    from tests.engine.fixtures import make_pair_table

    table = make_pair_table(tmp_path / "pairs", n=20)
    data = DataConfig(stored_size=32, split_rule="blocked")
    source = open_source(table, data, FrontEndConfig())
    module = DeviceLogMel(source.front_end)
    calls: list[int] = []

    def log_mel(samples: np.ndarray) -> np.ndarray:
        calls.append(samples.size)
        return module(torch.from_numpy(samples)).numpy()

    device_cache = build_cache(source, tmp_path / "device", workers=2, log_mel_fn=log_mel)
    host_cache = build_cache(source, tmp_path / "host", workers=2)
    assert len(calls) == len(source)  # every clip went through the device function, in this process
    for i in range(len(source)):
        assert device_cache.log_mel(i).shape == host_cache.log_mel(i).shape
        np.testing.assert_allclose(device_cache.log_mel(i).astype(np.float32),
                                   host_cache.log_mel(i).astype(np.float32), atol=4e-3)
        np.testing.assert_array_equal(device_cache.image(i), host_cache.image(i))
