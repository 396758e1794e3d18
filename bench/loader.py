"""Data loading speed on the demo world (or any dataset) on CPU: samples/s of the training loader,
decoding on the fly with worker processes versus the decode-once cache, and the cache's build time.
Prints measured figures; asserts nothing.

    python bench/loader.py --data ~/.local/share/soundscape-mapper/demo-world
    python bench/loader.py --generate default          # writes the demo world into a temporary folder first
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.augment import augment_images, mask_log_mels, step_generator  # noqa: E402
from engine.config.run import load_preset  # noqa: E402
from engine.train.data import open_run_data, train_loader  # noqa: E402


def samples_per_second(data, cfg, max_batches: int) -> float:  # noqa: ANN001
    loader, sampler, dataset = train_loader(data, cfg)
    sampler.set_epoch(1)
    dataset.set_epoch(1)
    n, started = 0, None
    for i, batch in enumerate(loader):
        if i == 0:  # the first batch pays for starting the workers: time from the second one on
            started = time.perf_counter()
            continue
        n += batch["size"]
        if i >= max_batches:
            break
    return n / (time.perf_counter() - started) if started and n else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="dataset folder (e.g. the demo world)")
    parser.add_argument("--generate", choices=["tiny", "small", "default"], help="generate the demo world first")
    parser.add_argument("--preset", default="demo-cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bench-loader-")
    data_dir = args.data
    if args.generate:
        from engine.demo_world import generate_world

        data_dir = Path(tmp.name) / "world"
        t0 = time.perf_counter()
        generate_world(data_dir, seed=0, size=args.generate)
        print(f"demo world '{args.generate}' generated in {time.perf_counter() - t0:.1f} s")
    if data_dir is None:
        parser.error("give --data DIR or --generate SIZE")
    torch.set_num_threads(1)  # the loader's own cost, without the trainer's threads competing
    cfg = load_preset(args.preset)
    print(f"{data_dir}: preset {args.preset} ({cfg.data.stored_size} px regions, {cfg.crop_frames}-frame crops, "
          f"batch {cfg.train.batch_size}); {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    direct = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, cache=False, num_workers=args.workers))
    t0 = time.perf_counter()
    data = open_run_data(data_dir, direct)
    print(f"scan: {len(data.source):,} pairs in {time.perf_counter() - t0:.2f} s ({data.report.describe()})")
    rate = samples_per_second(data, direct, args.batches)
    print(f"decoding on the fly, {args.workers} workers: {rate:,.0f} samples/s")
    cache_root = Path(tmp.name) / "cache"
    cached = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, cache=True, cache_workers=args.workers))
    t0 = time.perf_counter()
    data = open_run_data(data_dir, cached, cache_root=cache_root)
    build = time.perf_counter() - t0
    print(f"cache build, {args.workers} processes: {build:.1f} s = {len(data.source) / build:,.0f} pairs/s")
    for workers in (0, args.workers):
        c = dataclasses.replace(cached, data=dataclasses.replace(cached.data, num_workers=workers))
        print(f"from the cache, {workers} workers: {samples_per_second(data, c, args.batches * 3):,.0f} samples/s")
    batch = next(iter(train_loader(data, cached)[0]))
    t0 = time.perf_counter()
    for step in range(5):
        g = step_generator(0, step)
        augment_images(batch["image"], cfg.model.image_size, cfg.augment, g)
        mask_log_mels(batch["audio"], cfg.augment, g)
    per = (time.perf_counter() - t0) / 5
    print(f"batch augmentation on the CPU (1 thread): {1000 * per:.1f} ms per batch of {batch['size']} = "
          f"{batch['size'] / per:,.0f} samples/s")
    tmp.cleanup()


if __name__ == "__main__":
    main()
