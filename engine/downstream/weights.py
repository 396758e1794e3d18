"""``--weights RUN|random|FILE``: the encoders a downstream protocol starts from.

- a run folder (``train --out RUN``): our pretrained image (and audio) encoder;
- ``random``: a fresh random initialisation of the architecture named by ``--arch`` (seeded);
- a file: a torchvision ResNet state dict on disk (e.g. ImageNet weights you already have; nothing
  is ever downloaded), for the image encoder only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.audio import FrontEndConfig
from engine.checkpoint import load_encoders
from engine.config.model import ModelConfig
from engine.errors import ConfigError
from engine.models import (
    AudioEncoder,
    ImageEncoder,
    build_audio_encoder,
    build_image_encoder,
    load_torchvision_weights,
)

log = logging.getLogger(__name__)


@dataclass
class Encoders:
    """Encoders (eval mode, CPU) and what they are, for the results file."""

    image: ImageEncoder
    audio: AudioEncoder | None
    front_end: FrontEndConfig
    model: ModelConfig
    description: dict[str, Any]  # source, path, label, arch, width, checkpoint

    @property
    def label(self) -> str:
        return str(self.description["label"])


def load_weights(spec: str, arch: str = "resnet18", width: int = 64, checkpoint: str = "best",
                 need_audio: bool = False, seed: int = 0, label: str | None = None) -> Encoders:
    """Resolve ``--weights``.

    Args:
        spec: a run folder, ``random``, or a torchvision state-dict file.
        arch: architecture for ``random`` and files (a run folder records its own).
        width: stem width for ``random`` (64 is torchvision's; smaller for quick checks).
        checkpoint: ``best`` or ``last`` for a run folder.
        need_audio: the protocol needs the audio encoder too (ADVANCE); files only hold an image one.
        seed: seeds the random initialisation.
        label: the name of this row in reports; defaults to the run folder's name, ``Random`` or the
            file's stem.

    Returns:
        :class:`Encoders`.

    Raises:
        ConfigError: ``spec`` is none of the three, or a file where audio is needed.
        CheckpointError / UserInputError: a run or weights file that cannot be loaded.
    """
    path = Path(spec)
    if spec == "random":
        cfg = ModelConfig(image_arch=arch, audio_arch=arch, image_width=width, audio_width=width)
        torch.manual_seed(seed)
        image, audio = build_image_encoder(cfg), build_audio_encoder(cfg) if need_audio else None
        desc = {"source": "random", "path": None, "label": label or "Random", "seed": seed}
        front_end = FrontEndConfig()
    elif path.is_dir():
        run = load_encoders(path, checkpoint)
        cfg, image, audio, front_end = run.model, run.image_encoder, run.audio_encoder, run.front_end
        desc = {"source": "run", "path": str(path.resolve()), "label": label or path.resolve().name,
                "checkpoint": checkpoint, "epoch": run.checkpoint.get("epoch"), "preset": run.config.get("preset")}
    elif path.is_file():
        if need_audio:
            raise ConfigError("--weights", f"{path} holds only image weights, this protocol needs both encoders",
                              "give a run folder, or 'random'")
        if width != 64:
            raise ConfigError("--width", "a torchvision weights file needs the full width 64", "drop --width")
        cfg = ModelConfig(image_arch=arch)
        image, audio, front_end = build_image_encoder(cfg), None, FrontEndConfig()
        load_torchvision_weights(image, path)
        desc = {"source": "file", "path": str(path.resolve()), "label": label or path.stem}
    else:
        raise ConfigError("--weights", f"{spec!r} is neither a run folder, a weights file nor 'random'",
                          "give a folder made by 'train --out', a local torchvision .pth, or 'random'")
    desc.update(arch=cfg.image_arch, width=cfg.image_width)
    if need_audio:
        desc.update(audio_arch=cfg.audio_arch, audio_width=cfg.audio_width)
    image.eval()
    if audio is not None:
        audio.eval()
    log.info("weights: %s (%s, %s)", desc["label"], desc["source"], cfg.image_arch)
    return Encoders(image, audio, front_end, cfg, desc)


class PooledBackbone(nn.Module):
    """(N, 3, H, W) RGB in [0, 1] -> (N, num_features): ImageNet normalisation, the ResNet stages,
    global average pooling. The encoder's embedding head is not used."""

    def __init__(self, encoder: ImageEncoder) -> None:
        super().__init__()
        self.backbone = encoder.backbone
        self.register_buffer("mean", encoder.mean.clone(), persistent=False)
        self.register_buffer("std", encoder.std.clone(), persistent=False)
        self.num_features = encoder.backbone.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.backbone.avgpool(self.backbone.feature_map((x - self.mean) / self.std)), 1)


