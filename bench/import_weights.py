"""Time importing and exporting the SoundingEarth authors' checkpoint layout (prints figures; never pass/fail).

    python bench/import_weights.py                  # ResNet-50 image + ResNet-18 sound encoder
    python bench/import_weights.py --image-arch resnet18

A checkpoint of their exact layout is made from randomly initialised encoders (engine.interop's inverse
mapping), then ``import-weights`` and ``export`` run on it as a user would run them, on the CPU.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from engine.cli import main
from engine.interop.soundingearth import ARCH_NAMES, authors_state_dict
from engine.models import ModelConfig, build_audio_encoder, build_image_encoder


def run(image_arch: str, image_size: int) -> None:
    cfg = ModelConfig(image_arch=ARCH_NAMES[image_arch], audio_arch=ARCH_NAMES["resnet18"])
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "authors.pt"
        torch.save(authors_state_dict(build_image_encoder(cfg), build_audio_encoder(cfg)), weights)
        started = time.perf_counter()
        assert main(["import-weights", "--checkpoint", str(weights), "--out", f"{tmp}/run",
                     "--image-size", str(image_size)]) == 0
        imported = time.perf_counter()
        assert main(["export", "--run", f"{tmp}/run", "--out", f"{tmp}/bundle"]) == 0
        exported = time.perf_counter()
        size = sum(p.stat().st_size for p in Path(f"{tmp}/bundle").iterdir()) / 1e6
    print(f"{image_arch} image + resnet18 sound, {image_size} px, {torch.get_num_threads()} threads: "
          f"import {imported - started:.1f} s, export (ONNX + parity check) {exported - imported:.1f} s, "
          f"bundle {size:.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-arch", choices=list(ARCH_NAMES), default="resnet50")
    parser.add_argument("--image-size", type=int, default=192)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    run(args.image_arch, args.image_size)
