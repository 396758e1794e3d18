"""Atlas benchmarks (prints measured figures; never pass/fail).

  .venv/bin/python bench/atlas.py                    # all three
  .venv/bin/python bench/atlas.py --only encoders    # tiles/s: onnxruntime vs PyTorch eager, same tiles
  .venv/bin/python bench/atlas.py --only topk        # 1,000,000-tile atlas: load memory, ms per top-k query
  .venv/bin/python bench/atlas.py --only build       # 20,000 x 20,000 px GeoTIFF: atlas build peak RSS

Targets (issue 4): onnxruntime >= 1.3x PyTorch eager; top-k <= 50 ms on 2 cores and <= 600 MB loaded;
the 20k x 20k build within 1 GB of RAM.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REALDATA = Path(os.environ.get("SOUNDSCAPE_SHARED", ROOT.parent / "shared")) / "realdata"
THREADS = 2


def _make_bundle(folder: Path, image_width: int, audio_width: int, image_size: int, seed: int = 0) -> Path:
    """Export an untrained run of the given size (speed does not depend on the weights)."""
    import torch

    from engine.audio import FrontEndConfig
    from engine.checkpoint import save_checkpoint, write_run_config
    from engine.config.model import ModelConfig
    from engine.export import export_bundle
    from engine.models import build_audio_encoder, build_image_encoder

    torch.manual_seed(seed)
    cfg = ModelConfig(image_width=image_width, audio_width=audio_width, image_size=image_size)
    run = folder / "run"
    write_run_config(run, {"model": cfg.to_dict(), "front_end": FrontEndConfig().to_dict(), "data": {}})
    save_checkpoint(run / "checkpoints" / "best.pt", {"image_encoder": build_image_encoder(cfg).eval().state_dict(),
                                                      "audio_encoder": build_audio_encoder(cfg).eval().state_dict()})
    export_bundle(run, folder / "bundle")
    return folder / "bundle"


def _tiles(n: int, size: int) -> tuple[np.ndarray, str]:
    """n real tiles (RGB.byte.tif, 32 px windows) at the model size, repeated to n; else synthetic."""
    tif = REALDATA / "imagery" / "RGB.byte.tif"
    if tif.is_file():
        from engine.atlas.imagery import ImagerySource

        with ImagerySource(tif) as src:
            grid = src.grid(tile_px=32)
            tiles = [src.read_tile(grid, *grid.position(k), size)[0] for k in range(grid.count)]
        tiles = [t for t in tiles if t.mean() > 5]
        return np.stack([tiles[i % len(tiles)] for i in range(n)]), f"{len(tiles)} RGB.byte.tif tiles"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), "synthetic tiles"


def bench_encoders(work: Path, n: int) -> None:
    import torch

    from engine.checkpoint import load_encoders
    from engine.inference.encoders import BundleEncoders

    torch.set_num_threads(THREADS)
    print(f"\n== image encoder throughput, CPU, {THREADS} threads, batch 32 ==")
    for name, width, size in (("demo slim (width 16)", 16, 128), ("resnet18 full width", 64, 192)):
        bundle = _make_bundle(work / name.split()[0], width, width, size)
        tiles, what = _tiles(n, size)
        ort_enc = BundleEncoders(bundle, threads=THREADS, image_batch=32)
        torch_enc = load_encoders(bundle.parent / "run", "best").image_encoder.eval()

        def run_torch(batch: np.ndarray, enc=torch_enc) -> np.ndarray:
            # PyTorch's best plain path: contiguous float NCHW (the conversion is timed, as onnxruntime
            # does it inside its graph); feeding the permuted uint8 view is several times slower.
            with torch.inference_mode():
                x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255).contiguous()
                return enc(x).numpy()

        def run_ort(batch: np.ndarray, enc=ort_enc) -> np.ndarray:
            return enc.embed_images(batch)

        timings = {}
        for label, fn in (("onnxruntime", run_ort), ("torch eager", run_torch)):
            fn(tiles[:32])  # warm-up
            t0 = time.perf_counter()
            outs = [fn(tiles[i:i + 32]) for i in range(0, n, 32)]
            timings[label] = n / (time.perf_counter() - t0)
            timings[label + " out"] = np.concatenate(outs)
        diff = np.abs(timings["onnxruntime out"] - timings["torch eager out"]).max() / np.abs(
            timings["torch eager out"]).max()
        print(f"{name}, {size} px, {n} {what}: onnxruntime {timings['onnxruntime']:.1f} tiles/s, torch eager "
              f"{timings['torch eager']:.1f} tiles/s, ratio {timings['onnxruntime'] / timings['torch eager']:.2f}x "
              f"(max relative difference {diff:.1e})")


_TOPK_CHILD = textwrap.dedent("""
    import json, statistics, sys, time
    import numpy as np
    def status():
        fields = dict(line.split(':', 1) for line in open('/proc/self/status'))
        return {k: int(fields[k].split()[0]) // 1024 for k in ('VmRSS', 'VmHWM', 'RssAnon', 'RssFile')}
    t0 = time.perf_counter()
    from engine.atlas import open_atlas, sound_query, locate_tile
    imported = status()
    t1 = time.perf_counter()
    atlas = open_atlas(sys.argv[1])
    t_open = time.perf_counter() - t1
    opened = status()
    rng = np.random.default_rng(1)
    times = []
    for _ in range(int(sys.argv[2])):
        q = rng.standard_normal(128).astype(np.float32)
        t = time.perf_counter()
        result = sound_query(atlas, q, 10)
        times.append(time.perf_counter() - t)
    queried = status()
    t = time.perf_counter()
    hit = locate_tile(atlas, 10.37, 45.21)
    t_locate = time.perf_counter() - t
    t = time.perf_counter()
    locate_tile(atlas, 10.71, 45.43)
    t_locate2 = time.perf_counter() - t
    print(json.dumps({"tiles": len(atlas.tiles), "open_s": t_open, "ms": [x * 1000 for x in times],
                      "imported": imported, "opened": opened, "queried": queried,
                      "locate_first_ms": t_locate * 1000, "locate_ms": t_locate2 * 1000, "hit": hit}))
""")


def _write_random_atlas(root: Path, n: int, dim: int = 128) -> None:
    """An atlas of n random tiles on a 1000-column grid of 0.001-degree squares, written in parts."""
    from engine.atlas.writer import AtlasWriter
    from engine.audio import FrontEndConfig
    from engine.bundle.format import Bundle

    bundle = Bundle(path=root, manifest={}, bundle_id="bench-random", embedding_dim=dim, distance="euclidean",
                    image_size=128, ground_size_m=None, front_end=FrontEndConfig())
    rng = np.random.default_rng(0)
    with AtlasWriter(root, bundle, {"thumbnail_px": 8}) as w:
        for start in range(0, n, 100_000):
            k = min(100_000, n - start)
            idx = np.arange(start, start + k)
            lon0, lat0 = 10.0 + (idx % 1000) * 0.001, 45.0 + (idx // 1000) * 0.001
            fp = np.stack([np.stack([lon0, lat0 + 0.001], 1), np.stack([lon0 + 0.001, lat0 + 0.001], 1),
                           np.stack([lon0 + 0.001, lat0], 1), np.stack([lon0, lat0], 1)], axis=1)
            w.append_tiles(lon0 + 0.0005, lat0 + 0.0005, fp, 0, np.stack([idx % 1000, idx // 1000], 1),
                           [b""] * k, rng.standard_normal((k, dim), dtype=np.float32))
        w.manifest["sources"].append({"index": 0, "path": "random", "status": "complete", "tiles": n,
                                      "tile_px": [1, 1], "overview": None})
        w.commit()


def bench_topk(work: Path, n: int, queries: int) -> None:
    print(f"\n== top-k over {n:,} random 128-d tile embeddings (k = 10, Euclidean, numpy/OpenBLAS) ==")
    root = work / "atlas-1m"
    t = time.perf_counter()
    _write_random_atlas(root, n)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
    print(f"written in {time.perf_counter() - t:.1f} s, {size:.0f} MiB on disk")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(THREADS), "OMP_NUM_THREADS": str(THREADS)}
    out = subprocess.run([sys.executable, "-c", _TOPK_CHILD, str(root), str(queries)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    ms = r["ms"]
    print(f"open_atlas: {r['open_s'] * 1000:.1f} ms; RSS after import {r['imported']['VmRSS']} MB, after open "
          f"{r['opened']['VmRSS']} MB")
    print(f"sound_query (distances + scores for all {r['tiles']:,} tiles, top 10): first {ms[0]:.1f} ms "
          f"(pages in from the page cache), then median {statistics.median(ms[1:]):.1f} ms, "
          f"max {max(ms[1:]):.1f} ms over {len(ms) - 1} queries")
    q = r["queried"]
    print(f"RSS once loaded and queried: {q['VmRSS']} MB (peak {q['VmHWM']} MB): {q['RssFile']} MB file-backed "
          f"memory map (embeddings and norms), {q['RssAnon']} MB anonymous")
    print(f"locate_tile: first {r['locate_first_ms']:.1f} ms (builds the footprint bounds), then "
          f"{r['locate_ms']:.1f} ms")


def _write_big_geotiff(path: Path, side: int) -> None:
    """A side x side RGB GeoTIFF (UTM 32N, 0.5 m pixels), tiled 512 px, deflate; land-cover-like blocks
    with texture, written in strips."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    palette = rng.integers(20, 230, (16, 3)).astype(np.uint8)
    cells = rng.integers(0, 16, (side // 400 + 1, side // 400 + 1))
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32632", "transform": from_origin(600000, 5300000, 0.5, 0.5), "tiled": True,
               "blockxsize": 512, "blockysize": 512, "compress": "deflate", "zlevel": 1, "nodata": 0}
    cols = np.arange(side) // 400
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, side, 512):
            h = min(512, side - top)
            rows = (np.arange(top, top + h) // 400)[:, None]
            block = palette[cells[rows, cols[None, :]]]  # (h, side, 3)
            block = block + rng.integers(0, 12, (h, side, 1), dtype=np.uint8)
            if top == 0:
                block[:300] = 0  # a nodata band at the top
            dst.write(block.transpose(2, 0, 1), window=((top, top + h), (0, side)))


def bench_build(work: Path, side: int, tile_px: int) -> None:
    print(f"\n== atlas build of a {side:,} x {side:,} px GeoTIFF ({tile_px} px tiles, demo slim model) ==")
    tif = work / f"big_{side}.tif"
    if not tif.exists():
        t = time.perf_counter()
        _write_big_geotiff(tif, side)
        print(f"GeoTIFF written in {time.perf_counter() - t:.0f} s: {tif.stat().st_size / 2**20:.0f} MiB on disk, "
              f"{side * side * 3 / 2**20:.0f} MiB of pixels")
    bundle = work / "demo" / "bundle"
    if not bundle.exists():
        bundle = _make_bundle(work / "demo", 16, 16, 128)
    out = work / "atlas-big"
    shutil.rmtree(out, ignore_errors=True)
    code = ("import sys; from engine.atlas import build_atlas; "
            "r = build_atlas(sys.argv[1], sys.argv[2], imagery=[sys.argv[3]], tile_px=int(sys.argv[4]), threads=2); "
            "print(r.tiles_added)")
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", code, str(out), str(bundle), str(tif), str(tile_px)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    tiles = int(proc.stdout.split()[-1])
    note = "" if peak > before else " (an earlier child peaked higher)"
    print(f"{tiles:,} tiles in {wall:.0f} s ({tiles / wall:.0f} tiles/s, overview and thumbnails included); "
          f"peak RSS of the build process {peak / 1024:.0f} MB{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["encoders", "topk", "build"])
    parser.add_argument("--work", type=Path, help="folder for generated files (default: a temporary one)")
    parser.add_argument("--tiles", type=int, default=512, help="tiles per encoder timing (default 512)")
    parser.add_argument("--atlas-tiles", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=21)
    parser.add_argument("--side", type=int, default=20_000, help="GeoTIFF side in px (default 20000)")
    parser.add_argument("--tile-px", type=int, default=256)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"CPU: {os.cpu_count()} cores visible, {THREADS} threads used; work folder {work}")
        if args.only in (None, "encoders"):
            bench_encoders(work, args.tiles)
        if args.only in (None, "topk"):
            bench_topk(work, args.atlas_tiles, args.queries)
        if args.only in (None, "build"):
            bench_build(work, args.side, args.tile_px)


if __name__ == "__main__":
    main()
