"""Export a trained run as a model bundle (the format is :mod:`engine.bundle.format`).

- :mod:`~engine.export.onnx`: the two ONNX graphs and their export;
- :mod:`~engine.export.parity`: the onnxruntime-vs-PyTorch check on real inputs;
- :mod:`~engine.export.variants`: the smaller fp16 / int8 variants and their retrieval change;
- :mod:`~engine.export.writer`: the bundle folder itself (:func:`export_bundle`), written all or nothing.
"""

from engine.export.onnx import ExportError
from engine.export.writer import PRECISIONS, export_bundle, summary_line, trained_on

__all__ = ["PRECISIONS", "ExportError", "export_bundle", "summary_line", "trained_on"]
