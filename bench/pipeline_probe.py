"""Where the end-to-end step from the prepared cache loses time: each way of feeding the model, timed.

For the paper configuration (bench/train_throughput.py's model pair, bf16 + channels_last, compiled on
CUDA) this prints, for every variant of the GPU input pipeline, samples/s end to end and where the
training thread's time goes per step: waiting for the next batch, launching the step (host time inside
the step call; the device finishes later), and the rest. Variants:

  decode    device: nvJPEG batch decode in the pipeline; workers: libjpeg-turbo in the shard readers
  producer  thread: a producer thread prepares batches on a side stream; launch: the training thread
            launches the next batch's preparation on the side stream before handing out the current one
  augment   host reads: the augmentation as it was before (two device values read back per batch: the
            blur's kernel size and whether any sample is blurred); none: the engine's augmentation now

  python bench/pipeline_probe.py                     (CUDA; about 3 minutes with a cold compile)
  python bench/pipeline_probe.py --device cpu --samples 48 --batch-size 8 --steps 2 --workers 2
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import train_throughput as tt  # noqa: E402

from engine.augment import (  # noqa: E402
    AugmentConfig,
    _affine_views,
    colour_jitter,
    gaussian_blur,
    mask_log_mels,
    random_affine,
)
from engine.shard_training.compute import ComputeConfig  # noqa: E402
from engine.shard_training.loader import LoaderConfig, ShardBatches, make_loader  # noqa: E402
from engine.shard_training.pipeline import DevicePipeline, PipelineConfig  # noqa: E402
from engine.shards.format import read_index  # noqa: E402
from engine.shards.synthetic import SyntheticSpec, write_synthetic_soundingearth  # noqa: E402


def augment_with_host_reads(size: int, cfg: AugmentConfig):  # noqa: ANN201 - an AugmentFn
    """The batch augmentation as it was: the blur reads its kernel size and ``any`` back to the host."""
    def augment(regions: torch.Tensor, mels: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = _affine_views(regions, random_affine(regions.shape[0], cfg, gen, regions.device), size)
        x = colour_jitter(x, cfg, gen)
        n, (lo, hi) = x.shape[0], cfg.blur_sigma
        sigma = lo + (hi - lo) * torch.rand(n, generator=gen, device=x.device)
        apply = torch.rand(n, generator=gen, device=x.device) < cfg.blur_prob
        if bool(apply.any()):
            x = gaussian_blur(x, torch.where(apply, sigma, torch.zeros_like(sigma)))
        return x, mask_log_mels(mels[:, None].float(), cfg, gen)
    return augment


def timed_steps(step: tt.TrainStep, pipe: DevicePipeline, steps: int, warmup: int, device: torch.device,
                batch: int) -> dict[str, float]:
    batches = iter(pipe)
    for _ in range(warmup):
        b = next(batches)
        step(b.images, b.mels)
    tt.sync(device)
    wait = launch = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        b = next(batches)
        t1 = time.perf_counter()
        out = step(b.images, b.mels)
        wait, launch = wait + t1 - t0, launch + time.perf_counter() - t1
    tt.sync(device)
    wall = time.perf_counter() - start
    return {"samples_per_s": steps * batch / wall, "ms_per_step": 1e3 * wall / steps, "wait_ms": 1e3 * wait / steps,
            "launch_ms": 1e3 * launch / steps, "loss": float(out["loss"])}


def run_variant(step: tt.TrainStep, cache: Path, decode: str, readers: int, producer: str, augment: str,
                args: argparse.Namespace, device: torch.device, compute: ComputeConfig) -> dict[str, float]:
    B = args.batch_size
    index = read_index(cache)
    repeat = max(1, -(-readers * 2 * B // max(1, sum(s.count for s in index.shards))))
    loader_cfg = LoaderConfig(batch_size=B, audio_frames=args.frames, workers=readers, shuffle_buffer=1024,
                              decode=decode)
    raw = iter(make_loader(ShardBatches(cache, index.shards * repeat, loader_cfg), pin_memory=device.type == "cuda"))
    cfg = AugmentConfig()
    pipe = DevicePipeline(raw, device, PipelineConfig(augment=cfg, image_size=192, channels_last=compute.channels_last,
                                                      producer=producer),
                          augment=augment_with_host_reads(192, cfg) if augment == "host reads" else None)
    try:
        return timed_steps(step, pipe, args.steps, args.warmup, device, B)
    finally:
        pipe.close()
        raw._shutdown_workers()  # type: ignore[attr-defined]  # now, not whenever the iterator is collected


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--frames", type=int, default=215)
    p.add_argument("--workers", type=int, default=None, help="reader processes for the worker decode (cores - 2)")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    cuda = device.type == "cuda"
    cores = os.cpu_count() or 1
    workers = args.workers or max(1, cores - 2)
    B = args.batch_size
    if cuda:
        torch.backends.cudnn.benchmark = True
    work = Path(tempfile.mkdtemp(prefix="soundscape-probe-"))
    rows: list[dict[str, Any]] = []
    try:
        t = time.perf_counter()
        write_synthetic_soundingearth(work / "se", SyntheticSpec(args.samples), workers=cores)
        readers = max(1, min(6, workers))
        tt.bench_prepare(work / "se", work / "cache", "cpu", cores, max(8, args.samples // (4 * readers)))
        print(f"data and cache: {time.perf_counter() - t:.0f} s", flush=True)
        compute = ComputeConfig(bf16=cuda, channels_last=cuda, compile=cuda and not args.no_compile)
        step = tt.build_step(device, compute)
        t = time.perf_counter()
        rate, _ = tt.time_steps(step, tt.fixed_batches(device, B, args.frames, compute.channels_last), args.steps,
                                args.warmup, device, B)
        print(f"compute only: {rate:,.0f} samples/s (warm-up incl. compile {time.perf_counter() - t:.0f} s)", flush=True)
        rows.append({"variant": "compute only", "samples_per_s": rate})
        variants = [("device", readers, "thread", "host reads"), ("device", readers, "thread", "none"),
                    ("device", readers, "launch", "none"), ("workers", workers, "thread", "none"),
                    ("workers", workers, "launch", "none"), ("workers", max(1, workers * 2 // 3), "launch", "none")]
        print(f"{'decode':<8} {'readers':>7} {'producer':<8} {'augment':<10} {'samples/s':>9} {'ms/step':>8} "
              f"{'wait ms':>8} {'launch ms':>9}", flush=True)
        for decode, n, producer, augment in variants:
            try:
                r = run_variant(step, work / "cache", decode, n, producer, augment, args, device, compute)
            except Exception as err:  # noqa: BLE001 - one failed variant must not cost the others
                print(f"{decode:<8} {n:>7} {producer:<8} {augment:<10} FAILED: {type(err).__name__}: {err}", flush=True)
                continue
            finally:
                gc.collect()  # the variant's loader workers are gone before the next one forks its own
            print(f"{decode:<8} {n:>7} {producer:<8} {augment:<10} {r['samples_per_s']:>9,.0f} {r['ms_per_step']:>8.1f} "
                  f"{r['wait_ms']:>8.1f} {r['launch_ms']:>9.1f}", flush=True)
            rows.append({"decode": decode, "readers": n, "producer": producer, "augment": augment, **r})
        if args.json:
            card = torch.cuda.get_device_name(device) if cuda else f"CPU ({cores} cores)"
            args.json.write_text(json.dumps({"card": card, "torch": torch.__version__, "rows": rows}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
