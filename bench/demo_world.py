"""Benchmark: generating the demo world. Prints wall and CPU seconds and the size on disk, per part.

The generator runs pinned to two CPUs (``--cpus``) with a pool of as many processes, as on the
smallest machine the app targets. CPU seconds (this process and its workers) are printed too: on a
shared machine the wall time depends on the load, printed alongside.

``--probe`` adds a learnability check: canonical correlation between simple image features (colour
histogram, mean, spread, edges) and audio features (mean, spread and flux of 32 log-mel bands) fitted
on the train split, then cross-modal retrieval on the test split. A trained CNN should do better than
this linear baseline; if the baseline is near chance the world is too hard or inconsistent.

    .venv/bin/python bench/demo_world.py [--sizes tiny,small,default] [--cpus 2] [--probe]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.demo_world import generate_world  # noqa: E402


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def linear_probe(folder: Path) -> dict[str, float]:
    """Median ranks of cross-modal retrieval on the test split with CCA on hand-made features."""
    from PIL import Image

    from engine.audio import FrontEndConfig, file_log_mel

    with open(folder / "pairs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cfg = FrontEndConfig()

    def image_features(path: Path) -> np.ndarray:
        a = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
        q = np.minimum((a * 4).astype(int), 3)
        hist = np.bincount((q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).ravel(), minlength=64) / q[..., 0].size
        grey = a.mean(-1)
        edges = [np.abs(np.diff(grey, axis=0)).mean(), np.abs(np.diff(grey, axis=1)).mean()]
        return np.concatenate([np.sqrt(hist), a.mean((0, 1)), a.std((0, 1)), edges])

    def audio_features(path: Path) -> np.ndarray:
        mel = file_log_mel(path, cfg)
        bands = mel[: mel.shape[0] // 4 * 4].reshape(32, -1, mel.shape[1]).mean(1)
        return np.concatenate([bands.mean(1), bands.std(1), np.abs(np.diff(bands, axis=1)).mean(1)])

    x = np.array([image_features(folder / r["image"]) for r in rows])
    y = np.array([audio_features(folder / r["audio"]) for r in rows])
    split = np.array([r["split"] for r in rows])
    train, test = split == "train", split == "test"

    def whiten(fit: np.ndarray, apply: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = fit.mean(0)
        cov = np.cov(fit - mu, rowvar=False)
        w, v = np.linalg.eigh(cov + 1e-2 * np.trace(cov) / len(cov) * np.eye(len(cov)))
        m = v / np.sqrt(w)
        return (fit - mu) @ m, (apply - mu) @ m

    def retrieval(image_feats: np.ndarray, k: int) -> tuple[float, float]:
        xw, xt = whiten(image_feats[train], image_feats[test])
        yw, yt = whiten(y[train], y[test])
        u, s, vt = np.linalg.svd(xw.T @ yw / len(xw))
        a, b = xt @ u[:, :k] * s[:k], yt @ vt[:k].T
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        distance = -a @ b.T
        image_to_audio = (distance < np.diag(distance)[:, None]).sum(1)
        audio_to_image = (distance < np.diag(distance)[None, :]).sum(0)
        return float(np.median(image_to_audio)), float(np.median(audio_to_image))

    full = retrieval(x, 16)
    mean_colour = retrieval(x[:, 64:67], 3)  # a trivial cue: the image's mean colour alone
    return {"gallery": int(test.sum()), "image_to_audio": full[0], "audio_to_image": full[1],
            "mean_colour_image_to_audio": mean_colour[0], "mean_colour_audio_to_image": mean_colour[1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="default", help="comma-separated sizes (default: default)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs to pin to, and processes (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe", action="store_true", help="also run the linear learnability probe")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the temporary worlds")
    args = parser.parse_args(argv)

    cpus = sorted(os.sched_getaffinity(0))[: args.cpus]
    os.sched_setaffinity(0, cpus)  # the worker processes inherit it
    print(f"pinned to CPUs {cpus}; {len(cpus)} worker processes; load average before: "
          f"{os.getloadavg()[0]:.1f} on a {os.cpu_count()}-CPU machine")
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="demo-world-bench-") as tmp:
            out = Path(tmp) / size
            cpu0, wall0 = _cpu_seconds(), time.perf_counter()
            summary = generate_world(out, seed=args.seed, size=size, workers=len(cpus) if size != "tiny" else 1)
            wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
            parts = {name: _size_mb(out / name) for name in ("audio", "images", "mosaic.tif", "land_cover.tif")}
            print(f"{size}: {summary.recordings} recordings of {summary.clip_seconds:g} s, {summary.image_px} px "
                  f"images at {summary.pixel_m:g} m/px; wall {wall:.1f} s with {summary.workers} process(es) "
                  f"(target for default: <= 60 s on 2 cores), CPU {cpu:.1f} s (= {cpu / len(cpus):.1f} s on "
                  f"{len(cpus)} idle cores); load average after: {os.getloadavg()[0]:.1f}")
            print(f"    on disk {_size_mb(out):.1f} MB (target for default: <= 300 MB): "
                  + ", ".join(f"{k} {v:.1f} MB" for k, v in parts.items()))
            if args.probe:
                t0 = time.perf_counter()
                r = linear_probe(out)
                print(f"    linear probe (CCA on hand features, test split of {r['gallery']}): median rank "
                      f"image->audio {r['image_to_audio']:.0f} ({100 * r['image_to_audio'] / r['gallery']:.1f}%), "
                      f"audio->image {r['audio_to_image']:.0f} ({100 * r['audio_to_image'] / r['gallery']:.1f}%); "
                      f"chance {r['gallery'] / 2:.0f} ({time.perf_counter() - t0:.0f} s)")
                print(f"    the same with the image's mean colour alone: {r['mean_colour_image_to_audio']:.0f} and "
                      f"{r['mean_colour_audio_to_image']:.0f} (a trivial cue must not solve the pairing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
