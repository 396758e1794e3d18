"""Export a trained run as a model bundle (two ONNX encoders + manifest.json) for the app and for atlases.

The export is checked: onnx.checker, then onnxruntime against PyTorch on real inputs (the run's own
data when present); a relative difference above the tolerance fails it and nothing is written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run folder made by 'train'")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to write (replaced if it is a bundle)")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint (default best)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_const", const="fp16", dest="precision",
                           help="store fp16 weights (half the size; not faster on most CPUs)")
    precision.add_argument("--int8", action="store_const", const="int8", dest="precision",
                           help="int8 static quantisation (a quarter of the size, faster on CPU)")
    parser.add_argument("--parity-audio", type=Path, nargs="+", default=[], metavar="FILE",
                        help="extra recordings for the onnxruntime-vs-PyTorch check")
    parser.add_argument("--ground-size-m", type=float, default=None,
                        help="ground width of a training image (metres); the default atlas tile size")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest relative difference (default 1e-4)")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(precision="fp32")


def run(args: argparse.Namespace) -> int:
    from engine.export import export_bundle, summary_line
    from engine.files import json_safe

    manifest = export_bundle(args.run, args.out, checkpoint=args.checkpoint, precision=args.precision,
                             audio_files=args.parity_audio, ground_size_m=args.ground_size_m,
                             tolerance=args.tolerance)
    print(json.dumps(json_safe(manifest), indent=2, allow_nan=False) if args.json else summary_line(manifest, args.out))
    return 0
