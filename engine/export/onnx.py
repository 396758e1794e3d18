"""The two ONNX graphs of a bundle and their export.

The exporter is ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript; the TorchScript
exporter is deprecated in torch 2.11). Both graphs come out clean: BatchNorm folded into the
convolutions, opset pinned to :data:`OPSET`, only the batch axis (and the audio time axis) dynamic.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from engine.errors import UserInputError, brief

log = logging.getLogger(__name__)

OPSET = 18


class ExportError(UserInputError):
    """An export that cannot be made or fails its onnxruntime-vs-PyTorch check."""


class ImageInput(nn.Module):
    """The exported image graph: uint8 (N, S, S, 3) RGB -> cast, scale to [0, 1], NCHW -> encoder
    (which normalises with the ImageNet mean and std) -> (N, D)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image.permute(0, 3, 1, 2).to(torch.float32) * (1.0 / 255.0)).contiguous()
        return self.encoder(x)


class AudioInput(nn.Module):
    """The exported audio graph: float32 (N, 1, n_mels, T) normalised log-mel chunks -> (N, D)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.encoder(log_mel)


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path, input_name: str,
                dynamic: dict[int, str]) -> None:
    """Export ``module`` (eval mode) with one named input and output ``embedding``, the given axes dynamic.

    Raises:
        ExportError: the exporter or ``onnx.checker`` fails.
    """
    import onnx

    module.eval()
    shapes = {input_name: {axis: torch.export.Dim(name) for axis, name in dynamic.items()}}
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad(), \
                _quiet_loggers("onnxscript", "onnx_ir", "torch.onnx", "torch.export"):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(path), input_names=[input_name],
                              output_names=["embedding"], opset_version=OPSET, dynamo=True,
                              dynamic_shapes=shapes, optimize=True, verbose=False, external_data=False)
        model = onnx.load(str(path))
        strip_debug_metadata(model)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(path))
    except Exception as err:  # noqa: BLE001 - the exporter raises many types; the message says which
        raise ExportError(path, f"ONNX export failed ({type(err).__name__}: {brief(err)})",
                          "report this with the run's config.json") from None


def strip_debug_metadata(model) -> None:
    """Drop the exporter's per-node debug notes (the Python stack trace with this file's absolute path and
    line numbers, FX node text, name scopes) and doc strings, in place. They would make the bytes, and so
    the ``bundle_id``, depend on where the code was checked out: stripped, the same weights export to the
    same files."""
    for node in [*model.graph.node, *(n for f in model.functions for n in f.node)]:
        del node.metadata_props[:]
        node.doc_string = ""
    model.graph.doc_string = ""
    model.doc_string = ""


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    """The exporter's optimiser logs dozens of INFO lines per graph; keep them out of the CLI."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
