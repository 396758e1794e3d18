"""Training throughput for the paper configuration: samples/s end to end and compute only.

Builds a synthetic dataset in the SoundingEarth layout (1024 px JPEGs of ~400 KB, 8-bit spectrogram
JPEGs) in a temporary folder, then measures, for ResNet-50 image / ResNet-18 audio encoders, batch 256,
192 px crops and the batch-all triplet loss:

  prepare        images/s of one core: full decode vs DCT-scaled decode of the central region; the whole
                 CPU prepare (all cores) and the nvJPEG prepare on the GPU
  compute only   data already on the device: fp32, bf16 + channels_last, + torch.compile
  end to end     from the raw layout (a CPU DataLoader with workers decoding and augmenting per sample, the
                 usual approach and the baseline) and from the prepared cache (the GPU pipeline: shard
                 reader workers, nvJPEG batch decode, device augmentation on a side stream)

Small on CPU:  python bench/train_throughput.py --device cpu --samples 48 --batch-size 8 --steps 2
On one GPU:    python bench/train_throughput.py --compile --bf16   (see bench/gpu_check.sh)
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from engine.gpu.augment import ImageAugmentConfig, MelAugmentConfig, jitter_colours  # noqa: E402
from engine.gpu.compute import ComputeConfig, PairModel, TrainStep, prepare_model  # noqa: E402
from engine.gpu.distributed import GatheredLoss  # noqa: E402
from engine.gpu.loader import LoaderConfig, ShardBatches, crop_frames, make_loader  # noqa: E402
from engine.gpu.pipeline import DevicePipeline, PipelineConfig  # noqa: E402
from engine.models import AudioEncoder, ImageEncoder, ModelConfig  # noqa: E402
from engine.shards.codec import decode_region  # noqa: E402
from engine.shards.format import CacheGeometry, read_index  # noqa: E402
from engine.shards.prepare import PrepareConfig, prepare_cache  # noqa: E402
from engine.shards.source import scan_soundingearth, spectrogram_to_log_mel  # noqa: E402
from engine.shards.synthetic import SyntheticSpec, write_synthetic_soundingearth  # noqa: E402

try:
    from engine.losses import batch_all_triplet_loss  # the training loss (issue 3)
except ImportError:  # until the engine's losses are merged: the reference formula
    def batch_all_triplet_loss(image: torch.Tensor, audio: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
        d = torch.cdist(image, audio)
        t = d.diagonal()
        return 0.5 * (torch.relu(t[None, :] - d + margin).mean() + torch.relu(t[:, None] - d + margin).mean())

ROWS: list[dict[str, Any]] = []


def report(name: str, value: float | None, unit: str, note: str = "") -> None:
    ROWS.append({"measurement": name, "value": value, "unit": unit, "note": note})
    shown = "n/a" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
    print(f"  {name:<52} {shown:>10} {unit:<10} {note}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- prepare ---------------------------------------------------------------------------------------------

def bench_decode_per_core(data: Path, count: int) -> None:
    files = [p.read_bytes() for p in sorted((data / "images").glob("*.jpg"))[:count]]
    geometry = CacheGeometry()

    def rate(fn: Callable[[bytes], Any]) -> float:
        fn(files[0])
        t = time.perf_counter()
        for b in files:
            fn(b)
        return len(files) / (time.perf_counter() - t)

    plain = rate(lambda b: Image.open(io.BytesIO(b)).convert("RGB"))
    full = rate(lambda b: decode_region(b, geometry, dct_scaling=False))
    dct = rate(lambda b: decode_region(b, geometry, dct_scaling=True))
    report("decode, 1 core: full 1024 px decode (PIL)", plain, "img/s")
    report("decode, 1 core: full decode + centre 768 -> 384", full, "img/s")
    report("decode, 1 core: DCT-scaled 1/2 decode -> 384", dct, "img/s",
           f"{dct / plain:.2f}x full decode, {dct / full:.2f}x full+resize")


def bench_prepare(data: Path, out: Path, decoder: str, workers: int, shard_size: int) -> float:
    t = time.perf_counter()
    summary = prepare_cache(data, out, PrepareConfig(shard_size=shard_size, workers=workers, decoder=decoder))
    n = sum(summary.counts.values())
    return n / (time.perf_counter() - t)


# -- compute ---------------------------------------------------------------------------------------------

def build_step(device: torch.device, cfg: ComputeConfig, lr: float = 1e-3) -> tuple[TrainStep, PairModel]:
    torch.manual_seed(0)
    model_cfg = ModelConfig(image_arch="resnet50", audio_arch="resnet18", image_size=192)
    model = PairModel(ImageEncoder(model_cfg), AudioEncoder(model_cfg))
    run, plain = prepare_model(model, device, cfg)
    opt = torch.optim.Adam(plain.parameters(), lr=lr, fused=device.type == "cuda")
    return TrainStep(run, GatheredLoss(batch_all_triplet_loss), opt, cfg, device), plain


def time_steps(step: TrainStep, batches: Iterator[tuple[torch.Tensor, torch.Tensor]], steps: int, warmup: int,
               device: torch.device, batch: int) -> tuple[float, float]:
    """(samples/s over ``steps`` timed steps after ``warmup``, last loss)."""
    out: dict[str, torch.Tensor] = {}
    for _ in range(warmup):
        images, mels = next(batches)
        out = step(images, mels)
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        images, mels = next(batches)
        out = step(images, mels)
    sync(device)
    elapsed = time.perf_counter() - t
    return steps * batch / elapsed, float(out["loss"])


def fixed_batches(device: torch.device, batch: int, frames: int, channels_last: bool
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator(device=device).manual_seed(0)
    images = torch.rand(batch, 3, 192, 192, device=device, generator=g)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    mels = torch.randn(batch, 1, 128, frames, device=device, generator=g)
    while True:
        yield images, mels


# -- end to end from the raw layout: per-sample CPU decoding and augmentation ---------------------------

class RawLayoutDataset(Dataset):
    """The usual CPU path: full JPEG decode, centre region, rotate, crop, flip, per sample."""

    def __init__(self, data: Path, frames: int, crop: int = 192) -> None:
        self.records = scan_soundingearth(data).records
        self.frames, self.crop = frames, crop

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.records[i]
        rng = np.random.default_rng()
        region = Image.fromarray(decode_region(r.image.read_bytes(), CacheGeometry(), dct_scaling=False))
        angle = float(rng.uniform(-180, 180))
        rotated = region.rotate(angle, resample=Image.Resampling.BILINEAR)
        a = math.radians(angle)
        reach = max(0.0, (384 - self.crop * (abs(math.cos(a)) + abs(math.sin(a)))) / 2)
        cx, cy = 192 + rng.uniform(-reach, reach), 192 + rng.uniform(-reach, reach)
        left, top = int(cx - self.crop / 2), int(cy - self.crop / 2)
        img = rotated.crop((left, top, left + self.crop, top + self.crop))
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
        x = jitter_colours(x[None].float() / 255.0, ImageAugmentConfig(), None)[0]  # per sample, on the CPU
        pixels = np.asarray(Image.open(r.spectrogram).convert("L"))
        mel = crop_frames(spectrogram_to_log_mel(pixels), self.frames, rng)
        mel = (mel - mel.mean()) / max(float(mel.std()), 1.0)
        return x, torch.from_numpy(mel)[None]


def raw_batches(data: Path, batch: int, frames: int, workers: int, device: torch.device, channels_last: bool
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    loader = DataLoader(RawLayoutDataset(data, frames), batch_size=batch, shuffle=True, drop_last=True,
                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                        prefetch_factor=4 if workers else None)
    while True:
        for images, mels in loader:
            images = images.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, mels.to(device, non_blocking=True)


# -- end to end from the cache: the GPU pipeline ----------------------------------------------------------

def cache_pipeline(cache: Path, batch: int, frames: int, workers: int, device: torch.device,
                   channels_last: bool) -> DevicePipeline:
    index = read_index(cache)
    cfg = LoaderConfig(batch_size=batch, audio_frames=frames, workers=workers, shuffle_buffer=1024)
    raw = iter(make_loader(ShardBatches(cache, index.shards, cfg), pin_memory=device.type == "cuda"))
    return DevicePipeline(raw, device, PipelineConfig(image=ImageAugmentConfig(crop=192), mel=MelAugmentConfig(),
                                                      channels_last=channels_last))


def pipeline_batches(pipe: DevicePipeline) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for b in pipe:
        yield b.images, b.mels


def bench_input_only(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], steps: int, warmup: int,
                     device: torch.device, batch: int) -> float:
    for _ in range(warmup):
        next(batches)
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        images, _ = next(batches)
    sync(device)
    return steps * batch / (time.perf_counter() - t)


# -- main --------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="auto (cuda if available), cuda or cpu")
    p.add_argument("--samples", type=int, default=3072, help="synthetic rows to generate (default 3072)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=40, help="timed steps per measurement (default 40)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--frames", type=int, default=215, help="log-mel columns per sample (5 s)")
    p.add_argument("--workers", type=int, default=None, help="loader workers (default: cores - 2)")
    p.add_argument("--bf16", action="store_true", help="also measure bf16 + channels_last")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (bf16 + channels_last)")
    p.add_argument("--skip-raw", action="store_true", help="skip the raw-layout end-to-end baseline")
    p.add_argument("--data", type=Path, default=None, help="use this SoundingEarth folder instead of generating")
    p.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    return p.parse_args(argv)


def attempt(name: str, fn: Callable[[], Any]) -> Any:
    """Run one measurement; a failure is reported as a row and the benchmark goes on."""
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - one failed measurement must not cost the others
        report(name, None, "", f"FAILED: {type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}")
        traceback.print_exc(limit=4)
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="soundscape-bench-"))
    try:
        return run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    cuda = device.type == "cuda"
    cores = os.cpu_count() or 1
    workers = args.workers if args.workers is not None else max(1, cores - 2)
    card = torch.cuda.get_device_name(device) if cuda else f"CPU ({cores} cores)"
    print(f"train_throughput: {card}; torch {torch.__version__}; batch {args.batch_size}, 192 px crops, "
          f"ResNet-50 image + ResNet-18 audio, log-mel 128x{args.frames}; {workers} loader workers", flush=True)
    if cuda:
        torch.backends.cudnn.benchmark = True  # PyTorch's other defaults kept (cuDNN convolutions may use TF32)
    work.mkdir(parents=True, exist_ok=True)
    data = args.data or work / "SoundingEarth"
    B, S, W = args.batch_size, args.steps, args.warmup
    started = time.perf_counter()

    print("dataset", flush=True)
    if args.data is None and not (data / "metadata.csv").is_file():
        t = time.perf_counter()
        write_synthetic_soundingearth(data, SyntheticSpec(args.samples), workers=cores)
        sizes = [p.stat().st_size for p in (data / "images").glob("*.jpg")]
        report("generate synthetic SoundingEarth", args.samples / (time.perf_counter() - t), "rows/s",
               f"{args.samples} rows, image JPEGs {np.mean(sizes) / 1024:.0f} KB on average")
    n_rows = len(scan_soundingearth(data).records)

    print("prepare", flush=True)
    attempt("decode per core", lambda: bench_decode_per_core(data, min(64, n_rows)))
    # Reader workers of the GPU pipeline: each must fill at least two batches per epoch from its shards.
    cache_workers = max(1, min(6, workers, n_rows // (2 * B)))
    shard_size = max(8, n_rows // (4 * cache_workers))
    cache = work / "cache_cpu"
    rate = attempt("prepare, CPU", lambda: bench_prepare(data, work / "cache_cpu", "cpu", cores, shard_size))
    if rate is not None:
        report(f"prepare, CPU, {cores} processes (DCT-scaled)", rate, "img/s")
    if cuda:
        rate = attempt("prepare, nvJPEG", lambda: bench_prepare(data, work / "cache_gpu", "cuda", cores, shard_size))
        if rate is not None:
            report("prepare, nvJPEG decode + encode on the GPU", rate, "img/s")
            cache = work / "cache_gpu"

    print("compute only (data already on the device)", flush=True)
    configs = [("fp32", ComputeConfig())]
    if args.bf16 or args.compile:
        configs.append(("bf16 + channels_last", ComputeConfig(bf16=True, channels_last=True)))
    best_cfg = configs[-1][1]
    for name, cfg in configs:
        def compute_only(cfg: ComputeConfig = cfg, name: str = name) -> None:
            step, _ = build_step(device, cfg)
            rate, loss = time_steps(step, fixed_batches(device, B, args.frames, cfg.channels_last and cuda), S, W,
                                    device, B)
            report(f"compute only, {name}", rate, "samples/s", f"loss {loss:.3f}")
        attempt(f"compute only, {name}", compute_only)
        if cuda:
            torch.cuda.empty_cache()
    step: TrainStep | None = None
    if args.compile and not cuda:
        print("  (torch.compile is measured on CUDA only)")
    if args.compile and cuda:
        def compiled() -> TrainStep:
            cfg = ComputeConfig(bf16=True, channels_last=True, compile=True)
            step, _ = build_step(device, cfg)
            t = time.perf_counter()
            rate, loss = time_steps(step, fixed_batches(device, B, args.frames, cuda), S, W, device, B)
            report("compute only, bf16 + channels_last + compile", rate, "samples/s",
                   f"loss {loss:.3f}; warm-up incl. compile {time.perf_counter() - t:.0f} s")
            return step
        step = attempt("compute only, bf16 + channels_last + compile", compiled)
        if step is not None:
            best_cfg = ComputeConfig(bf16=True, channels_last=True, compile=True)
    if step is None:
        step = build_step(device, best_cfg)[0]
    channels_last = best_cfg.channels_last and cuda

    print("end to end", flush=True)
    label = "+ compile" if best_cfg.compile else "bf16 + channels_last" if best_cfg.bf16 else "fp32"
    if not args.skip_raw:
        def raw_e2e() -> None:
            batches = raw_batches(data, B, args.frames, workers, device, channels_last)
            try:
                rate, _ = time_steps(step, batches, max(S // 2, 1), W, device, B)
            finally:
                batches.close()  # stops the persistent workers
            report(f"end to end, raw layout, CPU loader ({workers} workers)", rate, "samples/s", f"model {label}")
        attempt("end to end, raw layout", raw_e2e)

    def cache_e2e() -> None:
        pipe = cache_pipeline(cache, B, args.frames, cache_workers, device, channels_last)
        try:
            report(f"input only, cache -> GPU pipeline ({cache_workers} readers)",
                   bench_input_only(pipeline_batches(pipe), S, W, device, B), "samples/s")
            rate, loss = time_steps(step, pipeline_batches(pipe), S * 2, W, device, B)
        finally:
            pipe.close()
        report("end to end, prepared cache, GPU pipeline", rate, "samples/s", f"model {label}; loss {loss:.3f}")
        if pipe.skipped:
            print(f"  skipped: {dict(pipe.skipped)}")
    attempt("end to end, prepared cache", cache_e2e)

    print(f"\n| measurement ({card}) | value | unit | note |\n| --- | ---: | --- | --- |")
    for r in ROWS:
        v = "n/a" if r["value"] is None else f"{r['value']:,.0f}" if r["value"] >= 100 else f"{r['value']:.2f}"
        print(f"| {r['measurement']} | {v} | {r['unit']} | {r['note']} |")
    print(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"card": card, "torch": torch.__version__, "rows": ROWS}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
