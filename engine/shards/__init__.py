"""The prepared training cache: WebDataset-style tar shards of re-encoded image regions and log-mels.

``soundscape-engine prepare`` writes it (:func:`engine.shards.prepare.prepare_cache`); the GPU input
pipeline (``engine.shard_training``) reads it. The format and the image geometry are described in
:mod:`engine.shards.format`. Torch-free except :mod:`engine.shards.gpu_prepare` (the nvJPEG path).
"""
