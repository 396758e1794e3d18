"""Checks that need a CUDA device (marked ``gpu``; skipped without one). bench/gpu_check.sh runs them.

Needs torch, torchvision, Pillow, numpy and, through the engine's data layer, soundfile and soxr (which a
bare CUDA image may lack: bench/gpu_check.sh installs carried wheels).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.augment import _affine_views, augment_images
from engine.config.augment import AugmentConfig
from engine.config.loss import LossConfig
from engine.config.model import ModelConfig
from engine.losses import PairLoss, batch_all_triplet_loss
from engine.models import AudioEncoder, ImageEncoder
from engine.shard_training.compute import ComputeConfig, PairModel, TrainStep, prepare_model
from engine.shard_training.loader import LoaderConfig, ShardBatches, make_loader
from engine.shard_training.pipeline import DevicePipeline, PipelineConfig
from engine.shards.jpeg_decode import as_byte_tensor, decode_batch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _jpegs(n: int, size: int = 384) -> tuple[list[bytes], list[np.ndarray]]:
    out, pixels = [], []
    for i in range(n):
        rng = np.random.default_rng(i)
        small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
        pixels.append(img)
    return out, pixels


def test_nvjpeg_decode_matches_cpu_decode_and_skips_damaged() -> None:
    datas, _ = _jpegs(6)
    datas[2] = datas[2][40:]  # not a JPEG any more
    gpu = decode_batch([as_byte_tensor(d) for d in datas], "cuda")
    cpu = decode_batch([as_byte_tensor(d) for d in datas], "cpu")
    assert gpu[2] is None and cpu[2] is None
    for g, c in zip(gpu, cpu, strict=True):
        if c is None:
            continue
        assert g.is_cuda and g.shape == c.shape == (3, 384, 384)
        diff = (g.cpu().float() - c.float()).abs()
        # nvJPEG and libjpeg-turbo differ in IDCT and chroma upsampling: a mean of 3.1 grey levels was measured
        # on an H100 (torch 2.11); a wrong channel order, crop or scale gives tens.
        assert float(diff.mean()) < 5.0


def test_gpu_augmentation_matches_cpu_geometry_and_ranges() -> None:
    x = torch.randint(0, 256, (8, 3, 256, 256), dtype=torch.uint8)
    quarter = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]).repeat(8, 1, 1)  # 90 degrees, whole region
    gpu = _affine_views(x.cuda(), quarter.cuda(), 256)
    assert torch.equal((gpu * 255).round().to(torch.uint8).cpu(), torch.rot90(x, 1, (2, 3)))
    theta = torch.tensor([[0.6, -0.3, 0.1], [0.3, 0.6, -0.05]]).repeat(8, 1, 1)
    assert float((_affine_views(x.cuda(), theta.cuda(), 192).cpu() - _affine_views(x, theta, 192)).abs().max()) < 1e-4
    big = torch.randint(0, 256, (64, 3, 256, 256), dtype=torch.uint8, device="cuda")
    out = augment_images(big, 192, AugmentConfig(), torch.Generator(device="cuda").manual_seed(0))
    assert out.shape == (64, 3, 192, 192) and out.dtype == torch.float32 and out.is_cuda
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0 and bool(torch.isfinite(out).all())


def test_loss_on_gpu_equals_cpu() -> None:
    g = torch.Generator().manual_seed(0)
    image, audio = torch.randn(256, 128, generator=g), torch.randn(256, 128, generator=g)
    cpu = batch_all_triplet_loss(image, audio)
    gpu = PairLoss(LossConfig())(image.cuda(), audio.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-6)


def test_bf16_compiled_steps_give_a_finite_decreasing_loss() -> None:
    """The bench's configuration (same shapes, so the bench reuses the compiled graphs from the cache)."""
    torch.manual_seed(0)
    cfg = ModelConfig(image_arch="resnet50", audio_arch="resnet18", image_size=192)
    compute = ComputeConfig(bf16=True, channels_last=True, compile=True)
    run, plain = prepare_model(PairModel(ImageEncoder(cfg), AudioEncoder(cfg)), torch.device("cuda"), compute)
    opt = torch.optim.Adam(plain.parameters(), lr=1e-3, fused=True)
    step = TrainStep(run, PairLoss(LossConfig()), opt, compute, torch.device("cuda"))
    g = torch.Generator(device="cuda").manual_seed(0)
    images = torch.rand(256, 3, 192, 192, device="cuda", generator=g).contiguous(memory_format=torch.channels_last)
    mels = torch.randn(256, 1, 128, 215, device="cuda", generator=g)
    losses = torch.stack([step(images, mels)["loss"] for _ in range(8)]).tolist()
    assert all(np.isfinite(losses)), losses
    assert min(losses[-3:]) < 0.9 * losses[0], losses


@pytest.mark.parametrize("scope", ["model", "step"])
def test_cuda_graph_steps_take_the_eager_steps(scope: str) -> None:
    """compile_mode reduce-overhead (CUDA graphs) changes launches, not numbers: fp32 losses and weights follow
    the eager step's (kernel choices differ slightly), and the returned losses survive later replays."""
    cfg = ModelConfig(image_arch="resnet18", audio_arch="resnet18", image_width=16, audio_width=16, image_size=64)
    g = torch.Generator(device="cuda").manual_seed(0)
    batches = [(torch.rand(32, 3, 64, 64, device="cuda", generator=g), torch.randn(32, 1, 64, 100, device="cuda",
                                                                                  generator=g)) for _ in range(5)]
    losses, models = [], []
    for compute in (ComputeConfig(), ComputeConfig(compile=True, compile_mode="reduce-overhead", compile_scope=scope)):
        torch.manual_seed(0)
        run, plain = prepare_model(PairModel(ImageEncoder(cfg), AudioEncoder(cfg)), torch.device("cuda"), compute)
        step = TrainStep(run, PairLoss(LossConfig()), torch.optim.Adam(plain.parameters(), lr=1e-4), compute,
                         torch.device("cuda"))
        losses.append(torch.stack([step(images, mels)["loss"] for images, mels in batches]).tolist())
        models.append(plain)
    np.testing.assert_allclose(losses[1], losses[0], rtol=2e-3)
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(q, p, rtol=1e-2, atol=1e-3)


def test_device_log_mel_on_cuda_matches_the_front_end() -> None:
    """(The CPU parity test on the real recordings is tests/engine/test_device_log_mel.py; this machine may not
    have them, so a chirp over noise 50 dB below it stands in; measured on CPU: 0.0014 dB.)"""
    from engine.audio.front_end import FrontEndConfig, log_mel_db
    from engine.device_log_mel import DeviceLogMel

    front_end = FrontEndConfig()
    t = np.arange(5 * front_end.sample_rate) / front_end.sample_rate
    rng = np.random.default_rng(0)
    samples = (0.3 * np.sin(2 * np.pi * (200 + 800 * t) * t) + rng.normal(0, 1e-3, t.size)).astype(np.float32)
    got = DeviceLogMel(front_end).cuda().db(torch.from_numpy(samples).cuda()).cpu().numpy()
    assert np.abs(got - log_mel_db(samples, front_end)).max() <= 0.01


def test_fused_adam_on_cuda_takes_the_same_step_as_foreach_adam() -> None:
    from engine.config.run import TrainConfig
    from engine.train.state import build_optimizer

    torch.manual_seed(0)
    a = torch.nn.Linear(64, 32).cuda()
    b = torch.nn.Linear(64, 32).cuda()
    b.load_state_dict(a.state_dict())
    fused = build_optimizer(list(a.parameters()), TrainConfig())
    plain = torch.optim.Adam(b.parameters(), lr=TrainConfig().lr, foreach=True)
    assert fused.defaults["fused"] is True
    x = torch.randn(16, 64, device="cuda")
    for model, opt in ((a, fused), (b, plain)):
        for _ in range(3):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("decode", "producer"), [("device", "thread"), ("workers", "thread"), ("device", "launch"),
                                                 ("workers", "launch")])
def test_cuda_pipeline_from_shards_with_a_damaged_jpeg(tmp_path: Path, decode: str, producer: str) -> None:
    from tests.engine.test_shard_loader import write_cache

    shards = write_cache(tmp_path, [16, 16], damaged={"7"})
    raw = iter(make_loader(ShardBatches(tmp_path, shards, LoaderConfig(batch_size=8, audio_frames=10, workers=2,
                                                                       shuffle_buffer=8, decode=decode)),
                           pin_memory=True))
    pipe = DevicePipeline(raw, "cuda", PipelineConfig(augment=AugmentConfig(), image_size=32, channels_last=True,
                                                      producer=producer))
    batches = [b for _, b in zip(range(4), pipe, strict=False)]
    pipe.close()
    assert all(b.images.is_cuda and b.images.shape == (8, 3, 32, 32) for b in batches)
    assert all(b.mels.is_cuda and b.mels.shape == (8, 1, 8, 10) for b in batches)
    assert "7" not in [k for b in batches for k in b.keys] and pipe.skipped["unreadable image"] == 1
    total = torch.stack([b.images.sum() for b in batches]).sum()  # consumer-stream use of prefetched tensors
    assert bool(torch.isfinite(total))


def test_nvjpeg_prepare_matches_cpu_prepare(tmp_path: Path) -> None:
    """The nvJPEG prepare path on the device stores the same samples as the CPU path."""
    from engine.config.data import DataConfig
    from engine.data.source import open_source
    from engine.shards.format import iter_shard
    from engine.shards.gpu_prepare import build_shards_cuda
    from engine.shards.plan import PrepareConfig, build_shard_cpu, plan_shards
    from tests.engine.shards_fixture import CORRUPT_KEY, make_soundingearth

    data = make_soundingearth(tmp_path / "se")
    data_cfg = DataConfig(stored_size=384, split_rule="paper")
    cfg = PrepareConfig(data=data_cfg, shard_size=4)
    source = open_source(data, data_cfg)
    plans = plan_shards(source.records, source.splits, cfg)
    (tmp_path / "gpu").mkdir()
    (tmp_path / "cpu").mkdir()
    sidecars = dict(build_shards_cuda(plans, tmp_path / "gpu", cfg, device="cuda", batch=4))
    for plan in plans:
        build_shard_cpu(plan, tmp_path / "cpu", cfg)
    skipped = [k for s in sidecars.values() for k in s["skipped"].get("unreadable image", [])]
    assert skipped == [CORRUPT_KEY]
    for plan in plans:
        cpu = {s.key: s for s in iter_shard(tmp_path / "cpu" / plan.name)}
        for s in iter_shard(tmp_path / "gpu" / plan.name):
            a = np.asarray(Image.open(io.BytesIO(s.jpeg)), np.float64)
            b = np.asarray(Image.open(io.BytesIO(cpu[s.key].jpeg)), np.float64)
            assert a.shape == b.shape and np.abs(a - b).mean() < 5.0
            np.testing.assert_array_equal(s.mel, cpu[s.key].mel)


@pytest.mark.parametrize("decode", ["device", "workers"])
def test_train_from_cache_on_cuda_and_resume(tmp_path: Path, decode: str) -> None:
    """`train --shards` on the GPU (bf16, channels_last, fused Adam), then a resumed third epoch."""
    from engine.checkpoint import load_checkpoint
    from engine.cli import main
    from engine.train.metrics_log import read_metrics
    from tests.engine.shards_fixture import make_soundingearth

    data = make_soundingearth(tmp_path / "se", rows=24)
    cache, run = tmp_path / "cache", tmp_path / "run"
    assert main(["prepare", "--data", str(data), "--out", str(cache), "--preset", "tiny", "--shard-size", "4",
                 "--workers", "1"]) == 0
    gpu = ["--device", "cuda", "--bf16", "--channels-last", "--jpeg-decode", decode]
    assert main(["train", "--shards", str(cache), "--out", str(run), "--preset", "tiny", "--workers", "2",
                 "--batch-size", "4", "--epochs", "2", *gpu]) == 0
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3", *gpu]) == 0
    events = read_metrics(run / "metrics.jsonl")
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, len(steps) + 1)) and len(steps) == 3 * events[0]["steps_per_epoch"]
    assert all(np.isfinite(e["loss"]) and e["loss"] > 0 for e in steps)
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2, 3]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 3
