"""DeepLab segmentation heads on our ResNet backbone.

- ``deeplabv3``: torchvision's ASPP (atrous spatial pyramid pooling) on the last stage, then a 3×3
  conv and a 1×1 classifier (the layout of torchvision's ``DeepLabHead``), upsampled to the input.
- ``deeplabv3plus`` (the paper's): the same ASPP, plus a decoder that joins the ASPP output,
  upsampled to stride 4, with reduced ``layer1`` features before two 3×3 convs and the classifier
  (Chen et al., ECCV 2018). Built here from torchvision's ASPP.

The backbone's last stage (and, for output stride 8, the one before) trades its stride for dilation,
as torchvision's ``replace_stride_with_dilation`` does, so pretrained weights keep their shapes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.models.segmentation.deeplabv3 import ASPP

from engine.errors import ConfigError
from engine.models import ImageEncoder, ResNetBackbone

HEADS = ("deeplabv3plus", "deeplabv3")
ATROUS_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}


def _dilate_stage(stage: nn.Sequential, previous: int, dilation: int) -> None:
    """Make a ResNet stage keep resolution: stride 1, and dilation ``dilation`` in all 3×3 convs
    after the first block (the first keeps ``previous``), matching torchvision's construction."""
    for i, block in enumerate(stage):
        d = previous if i == 0 else dilation
        convs = [block.conv1, block.conv2] if isinstance(block, BasicBlock) else [block.conv2]
        for conv in convs:
            conv.stride = (1, 1)
            conv.dilation = (d, d)
            conv.padding = (d, d)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)
        if isinstance(block, Bottleneck):
            block.stride = 1


def dilate_backbone(backbone: ResNetBackbone, output_stride: int) -> None:
    """Set the backbone's output stride to 16 (layer4 dilated) or 8 (layer3 and layer4 dilated)."""
    if output_stride not in ATROUS_RATES:
        raise ConfigError("--output-stride", f"{output_stride} is not supported", "use 8 or 16")
    if output_stride == 8:
        _dilate_stage(backbone.layer3, 1, 2)
        _dilate_stage(backbone.layer4, 2, 4)
    else:
        _dilate_stage(backbone.layer4, 1, 2)


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class DeepLab(nn.Module):
    """RGB in [0, 1] (N, 3, H, W) -> class logits (N, n_classes, H, W)."""

    def __init__(self, encoder: ImageEncoder, n_classes: int, head: str = "deeplabv3plus",
                 output_stride: int = 16, channels: int = 256) -> None:
        super().__init__()
        if head not in HEADS:
            raise ConfigError("--head", f"unknown head {head!r}", f"use one of {list(HEADS)}")
        self.backbone = encoder.backbone
        dilate_backbone(self.backbone, output_stride)
        self.register_buffer("mean", encoder.mean.clone(), persistent=False)
        self.register_buffer("std", encoder.std.clone(), persistent=False)
        self.head_name = head
        high = self.backbone.num_features
        self.aspp = ASPP(high, list(ATROUS_RATES[output_stride]), out_channels=channels)
        if head == "deeplabv3":
            self.classifier = nn.Sequential(*_conv_bn_relu(channels, channels, 3), nn.Conv2d(channels, n_classes, 1))
        else:
            low = _layer1_channels(self.backbone)
            reduced = max(8, channels * 48 // 256)  # 48 of 256 in the paper's decoder
            self.reduce = nn.Sequential(*_conv_bn_relu(low, reduced, 1))
            self.classifier = nn.Sequential(*_conv_bn_relu(channels + reduced, channels, 3),
                                            *_conv_bn_relu(channels, channels, 3), nn.Conv2d(channels, n_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        b = self.backbone
        x = (x - self.mean) / self.std
        low = b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x)))))
        high = self.aspp(b.layer4(b.layer3(b.layer2(low))))
        if self.head_name == "deeplabv3plus":
            high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
            high = torch.cat([high, self.reduce(low)], dim=1)
        return F.interpolate(self.classifier(high), size=size, mode="bilinear", align_corners=False)

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(backbone parameters, new head parameters): the head learns faster."""
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        head = [p for p in self.parameters() if id(p) not in backbone_ids]
        return list(self.backbone.parameters()), head


def _layer1_channels(backbone: ResNetBackbone) -> int:
    last = backbone.layer1[-1]
    return (last.bn3 if isinstance(last, Bottleneck) else last.bn2).num_features
