"""Print the embeddings of audio files or images, through a model bundle (onnxruntime) or, to check
parity, through the PyTorch run it was exported from.

Audio is embedded by the bundle's chunk rule (the mean of its chunk embeddings). Images of any size
are centre-cropped to a square and resized to the bundle's input size (Pillow bilinear, antialiased).

What an image should show: ``image.ground_size_m`` metres of ground across (the bundle's manifest;
``Bundle.ground_size_m``), the ground the encoder saw in training and evaluation, as an atlas tile of
that bundle does. A dataset's training image usually covers more: the encoder saw only its central
``image_region x eval_scale`` (e.g. the central 85 % of a demo-world image: 217.6 of its 256 m), so crop
such an image to that centre first, or the embedding is of a wider view at a smaller scale.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--audio", type=Path, nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG, MP3)")
    what.add_argument("--image", type=Path, nargs="+", metavar="FILE",
                      help="image files (JPEG, PNG, ...), each showing the bundle's image.ground_size_m of ground "
                           "across (centre-cropped to a square and resized to the bundle's input)")
    parser.add_argument("--backend", choices=["onnx", "torch"], default="onnx",
                        help="onnx: the bundle through onnxruntime (default); torch: the run's PyTorch encoders")
    parser.add_argument("--run", type=Path, help="run folder (for --backend torch)")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--json", action="store_true", help="one JSON object per input")


class _TorchBackend:
    """The same preprocessing as the bundle, through the run's PyTorch encoders."""

    def __init__(self, run_dir: Path, checkpoint: str, bundle) -> None:
        import torch

        from engine.checkpoint import load_encoders
        from engine.export.onnx import ImageInput

        self.torch = torch
        self.run = load_encoders(run_dir, checkpoint)
        self.image = ImageInput(self.run.image_encoder).eval()
        self.front_end = bundle.front_end
        if self.run.front_end != bundle.front_end:
            import logging

            logging.getLogger(__name__).warning("the run's front-end differs from the bundle's; using the bundle's")

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.image(self.torch.from_numpy(np.array(images))).numpy()

    def embed_log_mel(self, log_mel: np.ndarray) -> np.ndarray:
        from engine.audio import chunk_log_mel

        chunks = chunk_log_mel(log_mel, self.front_end)
        with self.torch.no_grad():
            return self.run.audio_encoder(self.torch.from_numpy(np.ascontiguousarray(chunks))).numpy().mean(0)


def run(args: argparse.Namespace) -> int:
    from engine.audio import chunk_spans, file_log_mel
    from engine.bundle.format import load_bundle
    from engine.errors import ConfigError
    from engine.inference.encoders import BundleEncoders
    from engine.inference.images import prepare_image, read_image_file

    bundle = load_bundle(args.bundle)
    if args.backend == "torch":
        if args.run is None:
            raise ConfigError("--backend torch", "needs the run folder", "add --run RUN (the run the bundle came from)")
        encoders = _TorchBackend(args.run, args.checkpoint, bundle)
    else:
        encoders = BundleEncoders(bundle)
    for path in args.audio or []:
        log_mel = file_log_mel(path, bundle.front_end)
        emb = encoders.embed_log_mel(log_mel)
        _emit(args, {"file": str(path), "kind": "audio", "backend": args.backend,
                     "seconds": round(log_mel.shape[1] / bundle.front_end.frames_per_second, 2),
                     "chunks": len(chunk_spans(log_mel.shape[1], bundle.front_end))}, emb)
    for path in args.image or []:
        image = read_image_file(path)
        emb = encoders.embed_images(prepare_image(image, bundle.image_size, path)[None])[0]
        _emit(args, {"file": str(path), "kind": "image", "backend": args.backend,
                     "size": [int(image.shape[1]), int(image.shape[0])]}, emb)
    return 0


def _emit(args: argparse.Namespace, row: dict, embedding: np.ndarray) -> None:
    from engine.cli_output import json_line

    embedding = np.asarray(embedding, dtype=np.float64)
    if args.json:
        row = {k: v for k, v in row.items() if v is not None}
        print(json_line({**row, "dim": int(embedding.size), "embedding": [float(f"{v:.7g}") for v in embedding]}))
    else:
        head = ", ".join(f"{v:.4f}" for v in embedding[:4])
        print(f"{row['file']}: {row['kind']} {embedding.size}-d, norm {np.linalg.norm(embedding):.4f}, [{head}, ...]")
