"""Inference without torch: the model bundle's encoders through onnxruntime."""
