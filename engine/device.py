"""Choosing the PyTorch device from a ``--device`` option (training, evaluation, downstream protocols)."""

from __future__ import annotations

import torch

from engine.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU; any other torch device name
    is checked.

    Raises:
        ConfigError: an unknown name, CUDA asked for where there is none, or a CUDA index out of range.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError("--device", f"unknown device {name!r}", "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", f"{name}: CUDA is not available on this machine", "use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError("--device", f"{name}: only {torch.cuda.device_count()} CUDA device(s)", "use cuda:0")
    return device
