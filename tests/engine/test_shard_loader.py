"""The shard loader and the device pipeline on CPU tensors: rank shares, equal step counts, resume,
augmented batches (shapes, dtypes, ranges), damaged JPEGs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.config.augment import AugmentConfig
from engine.shard_training.loader import LoaderConfig, ShardBatches, make_loader, plan_epoch
from engine.shard_training.pipeline import DevicePipeline, PipelineConfig
from engine.shards.format import RawSample, ShardInfo, write_index, write_shard

SIZE, MELS = 48, 8


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.repeat(np.repeat(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), 8, 0), 8, 1)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_cache(root: Path, counts: list[int], damaged: set[str] = frozenset()) -> list[ShardInfo]:
    """Shards of tiny samples; a log-mel's values encode its key and frame (key * 1000 + column)."""
    root.mkdir(parents=True, exist_ok=True)
    shards, key = [], 0
    for n, count in enumerate(counts):
        samples = []
        for _ in range(count):
            frames = 20 + key % 7
            mel = np.tile((key % 60) + np.arange(frames, dtype=np.float32) / 100, (MELS, 1)).astype(np.float16)
            jpeg = b"\xff\xd8 damaged" if str(key) in damaged else _jpeg(key)
            samples.append(RawSample(str(key), jpeg, mel, float(key), -float(key), "train"))
            key += 1
        name = f"train-{n:06d}.tar"
        write_shard(root / name, samples, {})
        shards.append(ShardInfo(name, "train", count))
    write_index(root, {"geometry": {}, "shards": [s.__dict__ for s in shards], "counts": {}, "skipped": {},
                       "n_mels": MELS})
    return shards


def test_epoch_plan_deals_every_shard_once_and_balances() -> None:
    shards = [ShardInfo(f"s{i}", "train", 100 if i < 9 else 37) for i in range(10)]
    plan = plan_epoch(shards, epoch=3, seed=1, world_size=2, workers=2, batch_size=16)
    dealt = [s.name for stream in plan.streams for s in stream]
    assert sorted(dealt) == sorted(s.name for s in shards)
    totals = [sum(s.count for s in stream) for stream in plan.streams]
    assert plan.batches_per_stream == min(totals) // 16 and max(totals) - min(totals) <= 100
    assert plan.steps == plan.batches_per_stream * 2
    other = plan_epoch(shards, epoch=4, seed=1, world_size=2, workers=2, batch_size=16)
    assert other.streams != plan.streams  # a new deal each epoch
    assert plan_epoch(shards, 3, 1, 2, 2, 16) == plan  # and the same on every rank


def test_ranks_read_disjoint_shares_with_equal_steps(tmp_path: Path) -> None:
    shards = write_cache(tmp_path, [12, 12, 12, 9])
    cfg = LoaderConfig(batch_size=4, audio_frames=10, workers=0, shuffle_buffer=8)
    seen: list[list[str]] = []
    for rank in (0, 1):
        ds = ShardBatches(tmp_path, shards, cfg, rank=rank, world_size=2)
        steps = ds.plan(0).steps
        batches = [b for _, b in zip(range(steps), iter(ds), strict=False)]
        assert [b["index"] for b in batches] == list(range(steps))
        assert all(b["epoch"] == 0 and b["mel"].shape == (4, MELS, 10) for b in batches)
        keys = [k for b in batches for k in b["keys"]]
        assert len(keys) == len(set(keys)) == steps * 4
        for b in batches:  # coordinates and log-mels travel with their key
            assert b["lon"].tolist() == [float(k) for k in b["keys"]]
            assert [int(round(float(m[0, 0]))) for m in b["mel"]] == [int(k) % 60 for k in b["keys"]]
        seen.append(keys)
    assert not set(seen[0]) & set(seen[1])
    assert ShardBatches(tmp_path, shards, cfg, 0, 2).plan(0).steps == ShardBatches(tmp_path, shards, cfg, 1, 2).plan(0).steps


def test_resume_skips_exactly_the_batches_taken(tmp_path: Path) -> None:
    shards = write_cache(tmp_path, [10, 10, 10, 10])
    cfg = LoaderConfig(batch_size=3, audio_frames=10, workers=2, shuffle_buffer=6, seed=5)
    full = ShardBatches(tmp_path, shards, cfg)
    steps = full.plan(0).steps
    whole = {b["index"]: b for b in _take(full, steps)}
    resumed = ShardBatches(tmp_path, shards, cfg, start_epoch=0, start_step=3)
    # Round robin over 2 workers may interleave up to one batch per worker of the next epoch.
    rest = {b["index"]: b for b in _take(resumed, steps - 3 + 2) if b["epoch"] == 0}
    assert set(rest) == set(range(3, steps))
    for index, b in rest.items():
        assert b["keys"] == whole[index]["keys"]
        assert torch.equal(b["mel"], whole[index]["mel"])


def _take(ds: ShardBatches, n: int) -> list[dict]:
    it = iter(make_loader(ds, pin_memory=False))
    out = [next(it) for _ in range(n)]
    del it
    return out


def _pipeline(root: Path, shards: list[ShardInfo], overlap: bool, batch: int = 4,
              decode: str = "device", producer: str = "thread") -> DevicePipeline:
    cfg = LoaderConfig(batch_size=batch, audio_frames=10, workers=0, shuffle_buffer=8, decode=decode)
    raw = iter(make_loader(ShardBatches(root, shards, cfg), pin_memory=False))
    pcfg = PipelineConfig(augment=AugmentConfig(time_masks=1, freq_masks=1), image_size=24, overlap=overlap, seed=1,
                          producer=producer)
    return DevicePipeline(raw, "cpu", pcfg)


def test_pipeline_batches_on_cpu_with_and_without_overlap(tmp_path: Path) -> None:
    shards = write_cache(tmp_path, [8, 8])
    results = []
    for overlap, producer in ((False, "thread"), (True, "thread"), (True, "launch")):
        pipe = _pipeline(tmp_path, shards, overlap, producer=producer)
        batches = [b for _, b in zip(range(3), pipe, strict=False)]
        pipe.close()
        b = batches[0]
        assert b.images.shape == (4, 3, 24, 24) and b.images.dtype == torch.float32
        assert 0.0 <= float(b.images.min()) and float(b.images.max()) <= 1.0
        assert b.mels.shape == (4, 1, MELS, 10) and b.mels.dtype == torch.float32
        for mel, key in zip(b.mels, b.keys, strict=True):  # a window of the key's clip, some bands masked
            kept = mel[mel != 0]
            assert kept.numel() > 0 and bool(((kept - int(key) % 60) >= 0).all() & ((kept - int(key) % 60) < 0.27).all())
        results.append(batches)
    for other in results[1:]:  # how batches are prepared ahead changes nothing but timing
        for a, b in zip(results[0], other, strict=True):
            assert a.keys == b.keys and torch.equal(a.images, b.images) and torch.equal(a.mels, b.mels)


@pytest.mark.parametrize(("overlap", "decode", "producer"), [
    (False, "device", "thread"), (True, "device", "thread"), (True, "workers", "thread"), (True, "device", "launch")])
def test_damaged_jpeg_in_a_shard_is_skipped_and_counted(tmp_path: Path, overlap: bool, decode: str,
                                                        producer: str) -> None:
    shards = write_cache(tmp_path, [8, 8], damaged={"5"})
    pipe = _pipeline(tmp_path, shards, overlap, decode=decode, producer=producer)
    batches = [b for _, b in zip(range(4), pipe, strict=False)]
    pipe.close()
    keys = [k for b in batches for k in b.keys]
    assert "5" not in keys
    assert all(b.images.shape[0] == 4 for b in batches)  # batch size kept: the all-gather needs it
    assert pipe.skipped["unreadable image"] == 1
    for b in batches:  # stand-ins keep image, log-mel and coordinates together
        assert b.lon.tolist() == [float(k) for k in b.keys]


def test_worker_decoding_hands_out_the_stored_pixels(tmp_path: Path) -> None:
    """decode="workers": the same samples in the same order as the raw batches, with the JPEGs' pixels."""
    shards = write_cache(tmp_path, [8, 8])
    on_device = _take(ShardBatches(tmp_path, shards, LoaderConfig(batch_size=4, audio_frames=10, workers=2,
                                                                  shuffle_buffer=8)), 4)
    in_workers = _take(ShardBatches(tmp_path, shards, LoaderConfig(batch_size=4, audio_frames=10, workers=2,
                                                                   shuffle_buffer=8, decode="workers")), 4)
    for raw, done in zip(on_device, in_workers, strict=True):
        assert "jpeg" not in done and done["image"].shape == (4, 3, SIZE, SIZE) and done["image"].dtype == torch.uint8
        assert done["keys"] == raw["keys"] and torch.equal(done["mel"], raw["mel"])
        for key, image in zip(done["keys"], done["image"], strict=True):
            # Pillow decodes the stored bytes independently of torchvision: the same libjpeg-turbo decode
            pillow = np.asarray(Image.open(io.BytesIO(_jpeg(int(key)))).convert("RGB")).transpose(2, 0, 1)
            assert np.abs(image.numpy().astype(int) - pillow).max() <= 1


def test_worker_decoding_feeds_the_pipeline_the_same_batches(tmp_path: Path) -> None:
    shards = write_cache(tmp_path, [8, 8])
    results = []
    for decode in ("device", "workers"):
        pipe = _pipeline(tmp_path, shards, overlap=True, decode=decode)
        results.append([b for _, b in zip(range(3), pipe, strict=False)])
        pipe.close()
    for a, b in zip(*results, strict=True):  # on CPU both decode with libjpeg-turbo: identical batches
        assert a.keys == b.keys and torch.equal(a.images, b.images) and torch.equal(a.mels, b.mels)


def test_unknown_decode_place_is_refused() -> None:
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="--jpeg-decode"):
        LoaderConfig(decode="gpu")
