"""Inference without torch: a model bundle's encoders through onnxruntime, and images prepared as the
bundle's image encoder expects them."""
