"""Image and audio encoders: ResNets that map an aerial image or a log-mel to a 128-d embedding.

``resnet18`` and ``resnet50`` are torchvision's exact definitions (so torchvision state dicts load
with ``--image-weights``); a ``width`` other than 64 builds the same architecture with fewer channels
per stage (the demo model uses width 16: 1/16 of the parameters, small enough to ship in the app).
The image encoder normalises its RGB input itself, so exported models take plain RGB.

``soundingearth-resnet18`` / ``soundingearth-resnet50`` are the SoundingEarth authors' variants (their
released checkpoints import through :mod:`engine.interop.soundingearth`): torchvision's blocks with a
32-channel stem and stages of 64, 182, 256 and 512 planes; their width is fixed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.resnet import BasicBlock, Bottleneck

from engine.config.model import ARCH_NAMES, ModelConfig
from engine.errors import UserInputError

log = logging.getLogger(__name__)

_RESNETS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "soundingearth-resnet18": (BasicBlock, [2, 2, 2, 2]),
    "soundingearth-resnet50": (Bottleneck, [3, 4, 6, 3]),
}
# Stem channels and the planes of the four stages, where they are not torchvision's width * (1, 2, 4, 8).
FIXED_WIDTHS: dict[str, tuple[int, tuple[int, int, int, int]]] = {
    "soundingearth-resnet18": (32, (64, 182, 256, 512)),
    "soundingearth-resnet50": (32, (64, 182, 256, 512)),
}
# One entry per configurable name (a name added to the config without a block here fails at import).
ARCHS = {name: _RESNETS[name] for name in ARCH_NAMES}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNetBackbone(resnet.ResNet):
    """torchvision's ResNet with a chosen stem width and input channels, and no classifier.

    It keeps torchvision's module names (conv1, bn1, layer1..layer4), so torchvision state dicts and
    ``IntermediateLayerGetter`` (segmentation heads) work on it.
    """

    def __init__(self, arch: str, width: int = 64, in_channels: int = 3) -> None:
        block, layers = ARCHS[arch]
        super().__init__(block, layers)
        stem, planes = FIXED_WIDTHS.get(arch, (width, (width, width * 2, width * 4, width * 8)))
        if stem != 64 or planes != (64, 128, 256, 512) or in_channels != 3:
            # Rebuild the stem and stages at the requested widths; torchvision fixes 64-512.
            self.inplanes = stem
            self.conv1 = nn.Conv2d(in_channels, stem, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(stem)
            self.layer1 = self._make_layer(block, planes[0], layers[0])
            self.layer2 = self._make_layer(block, planes[1], layers[1], stride=2)
            self.layer3 = self._make_layer(block, planes[2], layers[2], stride=2)
            self.layer4 = self._make_layer(block, planes[3], layers[3], stride=2)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
        self.num_features = planes[3] * block.expansion
        self.fc = nn.Identity()

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class _Encoder(nn.Module):
    def __init__(self, backbone: ResNetBackbone, embed_dim: int, l2_normalise: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, embed_dim)
        self.l2_normalise = l2_normalise

    def embed_features(self, x: torch.Tensor) -> torch.Tensor:
        z = self.head(torch.flatten(self.backbone.avgpool(self.backbone.feature_map(x)), 1))
        return nn.functional.normalize(z, dim=1) if self.l2_normalise else z


class ImageEncoder(_Encoder):
    """(N, 3, H, W) RGB floats in [0, 1] -> (N, embed_dim). ImageNet normalisation is inside."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(ResNetBackbone(cfg.image_arch, cfg.image_width, 3), cfg.embed_dim, cfg.l2_normalise)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_features((x - self.mean) / self.std)


class AudioEncoder(_Encoder):
    """(N, 1, n_mels, T) normalised log-mels (any T) -> (N, embed_dim)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(ResNetBackbone(cfg.audio_arch, cfg.audio_width, 1), cfg.embed_dim, cfg.l2_normalise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_features(x)


def build_image_encoder(cfg: ModelConfig) -> ImageEncoder:
    return ImageEncoder(cfg)


def build_audio_encoder(cfg: ModelConfig) -> AudioEncoder:
    return AudioEncoder(cfg)


def load_torchvision_weights(encoder: _Encoder, path: str | Path) -> None:
    """Start an encoder's backbone from a local torchvision state-dict file (never a download).

    Accepts ``.pth``/``.pt`` (loaded with ``weights_only=True``) or ``.safetensors``; the classifier
    (``fc.*``) is ignored. Raises :class:`UserInputError` naming the file when keys or shapes differ.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(path, "weights file not found", "give a local torchvision state-dict file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any decoding failure is the file's fault
        raise UserInputError(path, f"cannot read weights ({type(err).__name__})",
                             "give a torchvision state dict saved with torch.save or safetensors") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    fix = "give weights of the same architecture (e.g. resnet18 weights for a resnet18 encoder)"
    try:
        result = encoder.backbone.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches raise even when strict=False
        raise UserInputError(path, f"does not match the {type(encoder).__name__} backbone "
                             f"({str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else err})",
                             fix) from None
    missing = [k for k in result.missing_keys if not k.startswith("fc.")]
    if missing or result.unexpected_keys:
        raise UserInputError(path, f"does not match the {type(encoder).__name__} backbone "
                             f"(missing {missing[:3]}, unexpected {list(result.unexpected_keys)[:3]})", fix)
    log.info("image backbone initialised from %s", path)
