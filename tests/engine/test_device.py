"""The one --device rule of training, evaluation and the downstream protocols."""

from __future__ import annotations

import pytest
import torch

from engine.device import resolve_device
from engine.errors import ConfigError


def test_auto_and_named_devices() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"^--device: unknown device 'gpu0'; use auto, cpu, cuda or cuda:N$"):
        resolve_device("gpu0")
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        with pytest.raises(ConfigError, match=f"only {n} CUDA device"):
            resolve_device(f"cuda:{n}")
    else:
        with pytest.raises(ConfigError, match="^--device: cuda: CUDA is not available on this machine; use --device cpu$"):
            resolve_device("cuda")
