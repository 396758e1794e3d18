"""Batched JPEG decoding on a device: nvJPEG on CUDA, libjpeg-turbo on CPU (torchvision either way)."""

from __future__ import annotations

import torch
from torchvision.io import ImageReadMode, decode_jpeg


def as_byte_tensor(data: bytes | bytearray | memoryview) -> torch.Tensor:
    """JPEG bytes -> a 1-D uint8 CPU tensor (a copy: torch needs a writable buffer)."""
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def decode_batch(tensors: list[torch.Tensor], device: torch.device | str) -> list[torch.Tensor | None]:
    """Decode 1-D uint8 CPU tensors of JPEG bytes to (3, H, W) uint8 images on ``device``.

    One batched call where possible (nvJPEG batches are much faster than single calls). A batch holding
    a damaged file fails as a whole, so it is then retried one image at a time and only the damaged
    images come back as None.
    """
    device = torch.device(device)
    if not tensors:
        return []
    try:
        return list(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device))
    except (RuntimeError, ValueError):
        out: list[torch.Tensor | None] = []
        for t in tensors:
            try:
                out.append(decode_jpeg(t, mode=ImageReadMode.RGB, device=device))
            except (RuntimeError, ValueError):
                out.append(None)
        return out
