"""Measure the downstream protocols at realistic image sizes on synthetic data (prints figures).

Writes synthetic datasets in the official layouts (UC Merced-like 256 px .tif, ADVANCE-like 512 px
.jpg + 10 s .wav, DeepGlobe-like 2448 px scenes), then times each protocol with a full-width
ResNet and random weights, and compares our L-BFGS logistic regression with scikit-learn's on the
same features (accuracy and time; the peer for the linear probe).

    python bench/downstream_protocols.py --device cuda --arch resnet50
    python bench/downstream_protocols.py --small          # a quick CPU run of the same code
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.device import resolve_device  # noqa: E402
from engine.downstream.advance import AdvanceConfig, run_advance  # noqa: E402
from engine.downstream.classify import ClassifyConfig, run_classification  # noqa: E402
from engine.downstream.data import ImageDataset, SkippedFiles, make_loader  # noqa: E402
from engine.downstream.layouts import UCMERCED, list_scene_dataset  # noqa: E402
from engine.downstream.linear_probe import extract_features, fit_logistic_regression  # noqa: E402
from engine.downstream.segment import SegmentConfig, run_segmentation  # noqa: E402
from engine.downstream.splits import stratified_split  # noqa: E402
from engine.downstream.weights import PooledBackbone, load_weights  # noqa: E402
from tests.engine.downstream.make_fixtures import (  # noqa: E402
    ADVANCE_CLASSES,
    deepglobe_scene,
    scene_image,
    write_scene_dataset,
)


def write_advance_like(root: Path, per_class: int, size: int, seconds: float) -> None:
    rng = np.random.default_rng(0)
    rate = 22050
    t = np.arange(int(seconds * rate)) / rate
    for k, name in enumerate(ADVANCE_CLASSES):
        (root / "vision" / name).mkdir(parents=True, exist_ok=True)
        (root / "sound" / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(scene_image(rng, k, 13, size)).save(root / "vision" / name / f"{k}_{i}.jpg", quality=90)
            wave = 0.2 * np.sin(2 * np.pi * 250 * 1.3 ** k * t) + rng.normal(0, 0.05, t.size)
            sf.write(root / "sound" / name / f"{k}_{i}.wav", wave.astype(np.float32), rate, subtype="PCM_16")


def write_deepglobe_like(root: Path, scenes: int, size: int) -> None:
    rng = np.random.default_rng(0)
    folder = root / "train"
    folder.mkdir(parents=True, exist_ok=True)
    from engine.downstream.deepglobe import encode_mask

    for i in range(scenes):
        img, labels = deepglobe_scene(rng, size, size // 8)  # 2448 = 8 x 306
        Image.fromarray(img).save(folder / f"{1000 + i}_sat.jpg", quality=90)
        Image.fromarray(encode_mask(labels)).save(folder / f"{1000 + i}_mask.png")


def timed(label: str, fn, figures: list) -> object:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    figures.append((label, seconds))
    return out, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--small", action="store_true", help="tiny sizes and a slim encoder (CPU smoke run)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = resolve_device(args.device)
    small = args.small
    width = 8 if small else 64
    per_class, size = (4, 64) if small else (50, 256)
    adv_per_class, adv_size, adv_seconds = (3, 64, 2.0) if small else (20, 512, 10.0)
    scenes, scene_size = (4, 256) if small else (6, 2448)
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), "
          f"arch {args.arch} width {width}, torch {torch.__version__}")
    figures: list = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        timed("write UC Merced-like", lambda: write_scene_dataset(root, "ucmerced", per_class, size, seed=0), figures)
        n_images = 21 * per_class

        # Linear probe, step by step, so scikit-learn can fit the same features.
        enc = load_weights("random", args.arch, width, seed=0)
        samples = list_scene_dataset(root, "ucmerced")
        labels = np.asarray(samples.labels)
        train, test = stratified_split(labels, 0.5, 0)
        extractor = PooledBackbone(enc.image).to(device).eval()
        skipped = SkippedFiles()

        def features(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            loader = make_loader(ImageDataset(samples.paths, samples.labels, idx, UCMERCED.native_size if not small
                                              else size), 64, args.workers)
            return extract_features(extractor, loader, samples.paths, device, skipped)

        (xtr, ktr), s = timed("features (train half)", lambda: features(train), figures)
        xte, kte = features(test)
        print(f"features: {n_images / 2 / s:.0f} images/s (train half, {xtr.shape[1]}-d)")
        clf, s_ours = timed("our L-BFGS logistic regression", lambda: fit_logistic_regression(
            xtr, labels[ktr], 21, 1e-4, 500, device), figures)
        acc_ours = float((clf.predict(xte) == labels[kte]).mean())
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(xtr)
        sk, s_sk = timed("scikit-learn LogisticRegression", lambda: LogisticRegression(
            C=1.0 / (1e-4 * len(ktr)), max_iter=2000).fit(scaler.transform(xtr), labels[ktr]), figures)
        acc_sk = float((sk.predict(scaler.transform(xte)) == labels[kte]).mean())
        print(f"linear probe: ours {acc_ours:.4f} in {s_ours:.2f} s, scikit-learn {acc_sk:.4f} in {s_sk:.2f} s "
              f"(time ratio ours/sklearn {s_ours / s_sk:.2f})")

        ft_cfg = ClassifyConfig(dataset="ucmerced", root=str(root), mode="finetune", epochs=2, batch_size=32,
                                workers=args.workers, device=str(device), image_size=None if not small else size)
        result, s = timed("fine-tune 2 epochs + test", lambda: run_classification(
            ft_cfg, load_weights("random", args.arch, width, seed=0)), figures)
        print(f"fine-tune: {2 * len(train) / s:.0f} train images/s incl. test pass, accuracy "
              f"{result['metrics']['accuracy']:.4f}")

        timed("write ADVANCE-like", lambda: write_advance_like(root / "ADVANCE", adv_per_class, adv_size, adv_seconds),
              figures)
        adv_cfg = AdvanceConfig(root=str(root / "ADVANCE"), workers=args.workers, device=str(device), repeats=5,
                                image_size=256 if not small else 64)
        result, s = timed("ADVANCE protocol", lambda: run_advance(adv_cfg, load_weights(
            "random", args.arch, width, seed=0, need_audio=True)), figures)
        pairs = 13 * adv_per_class
        print(f"ADVANCE: {pairs} pairs of {adv_seconds:g} s in {s:.1f} s ({pairs / s:.1f} pairs/s); macro F1 "
              + ", ".join(f"{m} {result['metrics'][m]['macro_f1']:.3f}" for m in ("audio", "image", "both")))

        timed("write DeepGlobe-like", lambda: write_deepglobe_like(root / "DeepGlobe", scenes, scene_size), figures)
        seg_cfg = SegmentConfig(root=str(root / "DeepGlobe"), epochs=2, crops_per_image=8, workers=args.workers,
                                device=str(device), train_fraction=0.67,
                                **({"crop": 64, "batch_size": 8, "head_channels": 16, "eval_tile": 128} if small else {}))
        result, s = timed("DeepGlobe protocol", lambda: run_segmentation(seg_cfg, load_weights(
            "random", args.arch, width, seed=0)), figures)
        crops = sum(h["crops"] for h in result["history"])
        print(f"DeepGlobe: {crops} training crops + {result['split']['test_scored']} test scenes of {scene_size} px "
              f"in {s:.1f} s; OA {result['metrics']['overall_accuracy']:.3f}, mIoU {result['metrics']['mean_iou']:.3f}")
        if device.type == "cuda":
            print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    print("\nphase seconds")
    for label, seconds in figures:
        print(f"  {label:40s} {seconds:8.2f}")


if __name__ == "__main__":
    main()
