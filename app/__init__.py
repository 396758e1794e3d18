"""Soundscape Mapper desktop app: PySide6 + pyqtgraph + onnxruntime + sounddevice, never torch."""

__version__ = "0.1.0"
