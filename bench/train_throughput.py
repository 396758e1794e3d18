"""Training throughput for the paper configuration: samples/s end to end and compute only.

Builds a synthetic dataset in the SoundingEarth layout (1024 px JPEGs of ~400 KB, 8-bit spectrogram
JPEGs) in a temporary folder, then measures, for the ``paper-r50`` preset (ResNet-50 image / ResNet-18
audio encoders, batch 256, 192 px crops, the batch-all triplet loss, Adam):

  prepare        images/s of one core: a full decode vs the DCT-scaled decode of the central region that
                 the engine uses; the whole CPU prepare (all cores) and the nvJPEG prepare on the GPU
  compute only   data already on the device: fp32, bf16 + channels_last, + torch.compile
  end to end     from the raw layout: (a) the usual per-sample CPU path (full JPEG decode, augmentation per
                 sample in loader workers), (b) the engine's own loader (DCT-scaled decode in workers, batch
                 augmentation on the device); from the prepared cache: the GPU pipeline (shard readers,
                 device augmentation prefetched on a side stream), with the stored JPEGs decoded either in
                 batches on the device (nvJPEG on CUDA) or by the shard readers (libjpeg-turbo, one per process)

Small on CPU:  python bench/train_throughput.py --device cpu --samples 48 --batch-size 8 --steps 2
On one GPU:    python bench/train_throughput.py --bf16 --compile   (bench/gpu_check.sh runs it)
The preset's data settings need the engine's audio front-end (soundfile, soxr); without them only the
per-core decode and compute-only rows are measured.
"""

from __future__ import annotations

import argparse
import json
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

from engine.augment import augment_images, mask_log_mels, random_time_crop  # noqa: E402
from engine.config.augment import AugmentConfig  # noqa: E402
from engine.config.loss import LossConfig  # noqa: E402
from engine.config.model import ModelConfig  # noqa: E402
from engine.losses import PairLoss  # noqa: E402
from engine.models import AudioEncoder, ImageEncoder  # noqa: E402
from engine.shard_training.compute import ComputeConfig, PairModel, TrainStep, prepare_model  # noqa: E402
from engine.shard_training.loader import LoaderConfig, ShardBatches, make_loader  # noqa: E402
from engine.shard_training.pipeline import DevicePipeline, PipelineConfig  # noqa: E402
from engine.shards.format import read_index  # noqa: E402
from engine.shards.synthetic import SyntheticSpec, write_synthetic_soundingearth  # noqa: E402

# paper-r50 (engine/config/presets/paper-r50.json), repeated here so that the compute rows need no preset loader.
MODEL = ModelConfig(image_arch="resnet50", audio_arch="resnet18", image_size=192)
REGION, STORED = 0.75, 256
ROWS: list[dict[str, Any]] = []


def report(name: str, value: float | None, unit: str, note: str = "") -> None:
    ROWS.append({"measurement": name, "value": value, "unit": unit, "note": note})
    shown = "n/a" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
    print(f"  {name:<56} {shown:>10} {unit:<10} {note}", flush=True)


def attempt(name: str, fn: Callable[[], Any]) -> Any:
    """Run one measurement; a failure is reported as a row and the benchmark goes on."""
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - one failed measurement must not cost the others
        first = str(err).splitlines()[0][:160] if str(err) else ""
        report(name, None, "", f"FAILED: {type(err).__name__}: {first}")
        traceback.print_exc(limit=4)
        return None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- prepare ---------------------------------------------------------------------------------------------

def central_region_full_decode(path: Path) -> np.ndarray:
    """The baseline: decode all 1024x1024 pixels, keep the central 768, area-average 3x3 down to 256."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    side = int(min(w, h) * REGION)
    left, top = (w - side) // 2, (h - side) // 2
    return np.asarray(im.crop((left, top, left + side, top + side)).reduce(side // STORED))


def bench_decode_per_core(data: Path, count: int) -> None:
    from engine.data.images import decode_central_region

    paths = sorted((data / "images").glob("*.jpg"))[:count]  # read from the page cache by all three

    def rate(fn: Callable[[int], Any]) -> float:
        fn(0)
        t = time.perf_counter()
        for i in range(len(paths)):
            fn(i)
        return len(paths) / (time.perf_counter() - t)

    plain = rate(lambda i: Image.open(paths[i]).convert("RGB"))
    full = rate(lambda i: central_region_full_decode(paths[i]))
    dct = rate(lambda i: decode_central_region(paths[i], REGION, STORED))
    dct384 = rate(lambda i: decode_central_region(paths[i], REGION, 384))
    report("decode, 1 core: full 1024 px JPEG decode (Pillow)", plain, "img/s")
    report(f"decode, 1 core: full decode + centre {REGION:.0%} -> {STORED} px", full, "img/s")
    report(f"decode, 1 core: engine's DCT-scaled decode -> {STORED} px", dct, "img/s",
           f"{dct / plain:.2f}x the full decode, {dct / full:.2f}x full decode + resize")
    report("decode, 1 core: engine's DCT-scaled decode -> 384 px (1/2 scale)", dct384, "img/s",
           f"{dct384 / plain:.2f}x the full decode (no resize pass: --stored-size 384)")


def bench_prepare(data: Path, out: Path, decoder: str, workers: int, shard_size: int) -> float:
    """Whole ``prepare`` (listing, images, log-mels, shards, index) in images/s; CUDA is started beforehand,
    as a real prepare of 50,000 images amortises it."""
    from engine.config.run import load_preset
    from engine.shards.plan import PrepareConfig
    from engine.shards.prepare import prepare_shards

    cfg = load_preset("paper-r50")
    if decoder == "cuda":
        warm_nvjpeg(data)
    t = time.perf_counter()
    summary = prepare_shards(data, out, PrepareConfig(data=cfg.data, front_end=cfg.front_end, shard_size=shard_size,
                                                     workers=workers, decoder=decoder, seed=0))
    return sum(summary.counts.values()) / (time.perf_counter() - t)


def warm_nvjpeg(data: Path) -> None:
    from engine.shards.jpeg_decode import as_byte_tensor, decode_batch

    first = next((data / "images").glob("*.jpg"))
    decode_batch([as_byte_tensor(first.read_bytes())] * 2, "cuda")
    torch.cuda.synchronize()


def bench_nvjpeg_coding(data: Path, count: int, batch: int = 128) -> float:
    """The image part of the nvJPEG prepare alone (files already read): decode, cut, reduce, encode."""
    from engine.shards.format import ShardGeometry
    from engine.shards.gpu_prepare import _code_images

    datas: list[bytes | None] = [p.read_bytes() for p in sorted((data / "images").glob("*.jpg"))[:count]]
    geometry = ShardGeometry(region=round(REGION * 1024), stored=STORED, quality=90)
    warm_nvjpeg(data)
    _code_images(datas[:batch], geometry, torch.device("cuda"), batch)
    t = time.perf_counter()
    coded = _code_images(datas, geometry, torch.device("cuda"), batch)
    rate = len(datas) / (time.perf_counter() - t)
    assert all(isinstance(c, bytes) for c in coded)
    return rate


def bench_log_mels(device: torch.device, cores: int, clips: int = 64) -> None:
    """Log-mels of 10 s clips: the torch-free front-end on one host core vs the device log-mel (torchaudio)
    on ``device``, clips already decoded (prepare --decoder cuda and train --audio-source raw on CUDA)."""
    from engine.audio.front_end import FrontEndConfig, log_mel_db
    from engine.device_log_mel import DeviceLogMel, device_log_mels

    cfg = FrontEndConfig()
    rng = np.random.default_rng(0)
    host = [rng.normal(0, 0.1, 10 * cfg.sample_rate).astype(np.float32) for _ in range(clips)]
    t = time.perf_counter()
    for clip in host[:16]:
        log_mel_db(clip, cfg)
    per_core = 16 / (time.perf_counter() - t)
    report("log-mels, front-end on one host core", per_core, "clips/s", f"10 s clips; x{cores} cores "
           f"= {per_core * cores:,.0f}/s at best")
    module = DeviceLogMel(cfg).to(device)
    on_device = [torch.from_numpy(c).to(device) for c in host]
    for _ in range(2):  # warm-up (cuFFT plans)
        device_log_mels(on_device, module)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(5):
        mels = device_log_mels(on_device, module)
    _ = torch.cat(mels, 1).cpu()
    rate = 5 * clips / (time.perf_counter() - t)
    report(f"log-mels, device log-mel on {device.type}", rate, "clips/s",
           f"{rate / per_core:.1f}x one host core (same run)")


# -- compute ---------------------------------------------------------------------------------------------

def build_step(device: torch.device, cfg: ComputeConfig) -> TrainStep:
    """The paper-r50 model pair with Adam 1e-3 made by engine.train.state.build_optimizer (fused on CUDA)."""
    from engine.config.run import TrainConfig
    from engine.train.state import build_optimizer

    torch.manual_seed(0)
    run, plain = prepare_model(PairModel(ImageEncoder(MODEL), AudioEncoder(MODEL)), device, cfg)
    opt = build_optimizer(list(plain.parameters()), TrainConfig(lr=1e-3, weight_decay=0.0, optimizer="adam"))
    return TrainStep(run, PairLoss(LossConfig()), opt, cfg, device)


Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


def time_steps(step: TrainStep, batches: Batches, steps: int, warmup: int, device: torch.device,
               batch: int) -> tuple[float, float]:
    """(samples/s over ``steps`` timed steps after ``warmup``, the last loss)."""
    out: dict[str, torch.Tensor] = {}
    for _ in range(warmup):
        out = step(*next(batches))
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        out = step(*next(batches))
    sync(device)
    return steps * batch / (time.perf_counter() - t), float(out["loss"])


def fixed_batches(device: torch.device, batch: int, frames: int, channels_last: bool) -> Batches:
    g = torch.Generator(device=device).manual_seed(0)
    images = torch.rand(batch, 3, 192, 192, device=device, generator=g)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    mels = torch.randn(batch, 1, 128, frames, device=device, generator=g)
    while True:
        yield images, mels


# -- end to end from the raw layout --------------------------------------------------------------------

class PerSampleCPU(Dataset):
    """The usual CPU path: full JPEG decode and the augmentation, one sample at a time, in the workers."""

    def __init__(self, records: list[Any], front_end: Any, frames: int) -> None:
        self.records, self.front_end, self.frames = records, front_end, frames

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from engine.data.source import record_log_mel

        r = self.records[i]
        region = torch.from_numpy(central_region_full_decode(r.image).transpose(2, 0, 1).copy())
        g = torch.Generator().manual_seed(i)
        image = augment_images(region[None], 192, AugmentConfig(), g)[0]
        mel = random_time_crop(record_log_mel(r, self.front_end), self.frames, np.random.default_rng(i))
        return image, torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))[None]


def endless(loader: DataLoader) -> Iterator[Any]:
    while True:
        yield from loader


def per_sample_batches(data: Path, batch: int, frames: int, workers: int, device: torch.device,
                       channels_last: bool) -> Batches:
    from engine.config.run import load_preset
    from engine.data.source import open_source

    cfg = load_preset("paper-r50")
    source = open_source(data, cfg.data, cfg.front_end)
    loader = DataLoader(PerSampleCPU(source.records, cfg.front_end, frames), batch_size=batch, shuffle=True,
                        drop_last=True, num_workers=workers, pin_memory=device.type == "cuda",
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    for images, mels in endless(loader):
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        yield images, mels.to(device, non_blocking=True)


def engine_loader_batches(data: Path, batch: int, workers: int, device: torch.device, channels_last: bool) -> Batches:
    """`train --data`'s input: the engine's loader (DCT decode in workers), batch augmentation on the device."""
    from engine.augment import step_generator
    from engine.config.run import load_preset
    from engine.train.data import open_run_data, train_loader

    cfg = load_preset("paper-r50").replace("train", batch_size=batch).replace("data", num_workers=workers)
    run_data = open_run_data(data, cfg, use_cache=False)
    run_data.splits["train"] = list(range(len(run_data.source)))  # all rows: the bench data is small
    loader, sampler, dataset = train_loader(run_data, cfg)
    step = 0
    for epoch in range(1, 10**6):
        sampler.set_epoch(epoch, 0)
        dataset.set_epoch(epoch)
        for b in loader:
            g = step_generator(0, step, device)
            images = augment_images(b["image"].to(device, non_blocking=True), 192, cfg.augment, g)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, mask_log_mels(b["audio"].to(device, non_blocking=True), cfg.augment, g)
            step += 1


# -- end to end from the cache: the GPU pipeline --------------------------------------------------------

def cache_pipeline(cache: Path, batch: int, frames: int, workers: int, device: torch.device,
                   channels_last: bool, decode: str = "device", repeat: int = 1,
                   producer: str = "thread") -> DevicePipeline:
    """The GPU pipeline over the cache; ``repeat`` lists every shard that many times, so that many reader
    processes each fill batches from a small benchmark cache (all of it sits in the page cache, as a real
    cache of 50,000 samples would on a 128 GB machine)."""
    index = read_index(cache)
    cfg = LoaderConfig(batch_size=batch, audio_frames=frames, workers=workers, shuffle_buffer=1024, decode=decode)
    raw = iter(make_loader(ShardBatches(cache, index.shards * repeat, cfg), pin_memory=device.type == "cuda"))
    return DevicePipeline(raw, device, PipelineConfig(augment=AugmentConfig(), image_size=192,
                                                      channels_last=channels_last, producer=producer))


def pipeline_batches(pipe: DevicePipeline) -> Batches:
    for b in pipe:
        yield b.images, b.mels


def bench_input_only(batches: Batches, steps: int, warmup: int, device: torch.device, batch: int) -> float:
    for _ in range(warmup):
        next(batches)
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        next(batches)
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
    p.add_argument("--frames", type=int, default=215, help="log-mel columns per sample (5 s, as the preset)")
    p.add_argument("--workers", type=int, default=None, help="loader workers (default: cores - 2)")
    p.add_argument("--bf16", action="store_true", help="also measure bf16 + channels_last")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (bf16 + channels_last; CUDA)")
    p.add_argument("--compile-modes", default="default,reduce-overhead",
                   help="torch.compile modes to measure (comma-separated; the fastest drives the end-to-end rows)")
    p.add_argument("--skip-raw", action="store_true", help="skip the raw-layout end-to-end baselines")
    p.add_argument("--data", type=Path, default=None, help="use this SoundingEarth folder instead of generating")
    p.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    return p.parse_args(argv)


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
    print(f"train_throughput: {card}; torch {torch.__version__}; paper-r50: batch {args.batch_size}, 192 px crops "
          f"of the central {REGION:.0%} stored at {STORED} px, ResNet-50 image + ResNet-18 audio, log-mel "
          f"128x{args.frames}; {workers} loader workers", flush=True)
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
    n_rows = sum(1 for _ in (data / "images").glob("*.jpg"))

    print("prepare", flush=True)
    attempt("decode per core", lambda: bench_decode_per_core(data, min(64, n_rows)))
    # Shards small enough that the end-to-end rows' readers (the shards listed again where needed) each get
    # several; the prepare rows then also run several shards in parallel.
    shard_size = max(8, n_rows // (4 * max(1, min(6, workers, n_rows // (2 * B)))))
    cache: Path | None = None
    rate = attempt("prepare, CPU", lambda: bench_prepare(data, work / "cache_cpu", "cpu", cores, shard_size))
    if rate is not None:
        report(f"prepare, CPU, {cores} processes (DCT-scaled)", rate, "img/s")
        cache = work / "cache_cpu"
    if cuda:
        rate = attempt("prepare, nvJPEG", lambda: bench_prepare(data, work / "cache_gpu", "cuda", cores, shard_size))
        if rate is not None:
            report(f"prepare, nvJPEG decode + encode on the GPU, spectrograms in {cores - 1} processes", rate,
                   "img/s", "whole prepare: listing, images, log-mels, shards")
            cache = work / "cache_gpu"
        rate = attempt("prepare, nvJPEG image coding", lambda: bench_nvjpeg_coding(data, min(1024, n_rows)))
        if rate is not None:
            report("prepare, nvJPEG image coding only (batches of 128)", rate, "img/s",
                   f"decode 1024 px, cut the centre, reduce to {STORED} px, encode")

    attempt("log-mels of 10 s clips", lambda: bench_log_mels(device, cores))

    print("compute only (data already on the device)", flush=True)
    configs = [("fp32", ComputeConfig())]
    if args.bf16 or args.compile:
        configs.append(("bf16 + channels_last", ComputeConfig(bf16=True, channels_last=True)))
    best_cfg = configs[-1][1]
    for name, cfg in configs:
        def compute_only(cfg: ComputeConfig = cfg, name: str = name) -> None:
            rate, loss = time_steps(build_step(device, cfg), fixed_batches(device, B, args.frames,
                                                                           cfg.channels_last and cuda), S, W, device, B)
            report(f"compute only, {name}", rate, "samples/s", f"loss {loss:.3f}")
        attempt(f"compute only, {name}", compute_only)
        if cuda:
            torch.cuda.empty_cache()
    step: TrainStep | None = None
    if args.compile and not cuda:
        print("  (torch.compile is measured on CUDA only)")
    compiled_rate: float | None = None
    if args.compile and cuda:
        best_rate = 0.0
        for mode in [m.strip() for m in args.compile_modes.split(",") if m.strip()]:
            cfg = ComputeConfig(bf16=True, channels_last=True, compile=True,
                                compile_mode=None if mode == "default" else mode)

            def compiled(cfg: ComputeConfig = cfg, mode: str = mode) -> tuple[TrainStep, float]:
                step = build_step(device, cfg)
                t = time.perf_counter()
                rate, loss = time_steps(step, fixed_batches(device, B, args.frames, True), S, W, device, B)
                report(f"compute only, bf16 + channels_last + compile ({mode})", rate, "samples/s",
                       f"loss {loss:.3f}; warm-up incl. compile {time.perf_counter() - t:.0f} s")
                return step, rate
            result = attempt(f"compute only, bf16 + channels_last + compile ({mode})", compiled)
            if result is not None and result[1] > best_rate:
                step, best_rate, best_cfg = result[0], result[1], cfg
            torch.cuda.empty_cache()
        compiled_rate = best_rate or None
    if step is None:
        step = build_step(device, best_cfg)
    channels_last = best_cfg.channels_last and cuda
    label = (f"bf16 + channels_last + compile ({best_cfg.compile_mode or 'default'})" if best_cfg.compile
             else "bf16 + channels_last" if best_cfg.bf16 else "fp32")

    print(f"end to end (model: {label})", flush=True)
    if not args.skip_raw:
        for name, make in (
                (f"end to end, raw layout, per-sample CPU decode + augmentation ({workers} workers)",
                 lambda: per_sample_batches(data, B, args.frames, workers, device, channels_last)),
                (f"end to end, raw layout, engine loader ({workers} workers; augmentation on the device)",
                 lambda: engine_loader_batches(data, B, workers, device, channels_last))):
            def raw_e2e(name: str = name, make: Callable[[], Batches] = make) -> None:
                batches = make()
                try:
                    rate, _ = time_steps(step, batches, max(S // 2, 1), W, device, B)
                finally:
                    batches.close()  # type: ignore[attr-defined]  # stops the loader workers
                report(name, rate, "samples/s")
            attempt(name, raw_e2e)

    # As `train --shards` runs: the device decode with 6 shard readers and a producer thread; the decode in
    # the readers with 2/3 of the loader workers (the rest of the cores stay with the training process)
    # and the next batch launched by the training thread. A small benchmark cache lists its shards again
    # so that every reader fills batches (bench/pipeline_probe.py compares the other combinations).
    device_readers, worker_readers = min(6, workers), max(1, workers * 2 // 3)
    for decode, readers, producer, what in (
            ("device", device_readers, "thread", "JPEG batch decode on the device"),
            ("workers", worker_readers, "launch", "JPEG decode in the readers")):
        def cache_e2e(decode: str = decode, readers: int = readers, producer: str = producer, what: str = what) -> None:
            if cache is None:
                raise RuntimeError("no cache was prepared")
            times = max(1, -(-readers * 2 * B // max(1, n_rows)))
            pipe = cache_pipeline(cache, B, args.frames, readers, device, channels_last, decode, times, producer)
            try:
                report(f"input only, cache -> GPU pipeline, {what} ({readers} readers)",
                       bench_input_only(pipeline_batches(pipe), S, W, device, B), "samples/s")
                rate, loss = time_steps(step, pipeline_batches(pipe), S * 2, W, device, B)
            finally:
                pipe.close()
            share = f"; {rate / compiled_rate:.0%} of compute only" if compiled_rate else ""
            report(f"end to end, prepared cache, {what}", rate, "samples/s",
                   f"loss {loss:.3f}; producer {producer}" + (f"; shards listed {times}x" if times > 1 else "") + share)
            if pipe.skipped:
                print(f"  skipped: {dict(pipe.skipped)}")
        attempt(f"end to end, prepared cache, {what}", cache_e2e)

    print(f"\n| measurement ({card}) | value | unit | note |\n| --- | ---: | --- | --- |")
    for r in ROWS:
        v = "n/a" if r["value"] is None else f"{r['value']:,.0f}" if r["value"] >= 100 else f"{r['value']:.2f}"
        print(f"| {r['measurement']} | {v} | {r['unit']} | {r['note']} |")
    print(f"(end-to-end model: {label}; benchmark wall time {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"card": card, "torch": torch.__version__, "model": label, "rows": ROWS},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
