"""Import the SoundingEarth authors' released weights (a .pt state dict) as a run folder.

The checkpoint is loaded with weights_only=True, its layout (ResNet-18 or -50 image encoder, ResNet-18
sound encoder) is told from its keys and checked key by key; the run folder it writes works with
evaluate, export, downstream --weights and train --init like a trained one. Its config.json records the
file, its sha256 and the input conventions the weights need (SoundingEarth's spectrogram encoding).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, metavar="FILE.pt",
                        help="the authors' released weights: torch.save of their model's state_dict")
    parser.add_argument("--out", type=Path, required=True, metavar="RUN", help="run folder to write (new or empty)")
    parser.add_argument("--image-arch", choices=["resnet18", "resnet50"], default=None,
                        help="insist on this image encoder (default: told from the checkpoint's keys)")
    parser.add_argument("--image-size", type=int, default=192,
                        help="image side in pixels the run and its bundle take (default 192; the encoder is "
                             "fully convolutional)")


def run(args: argparse.Namespace) -> int:
    from engine.interop.soundingearth import import_checkpoint

    result = import_checkpoint(args.checkpoint, args.out, image_arch=args.image_arch, image_size=args.image_size)
    print(result.describe())
    return 0
