"""Prepared shards: WebDataset-style tar shards of re-encoded image regions and log-mels.

``soundscape-engine prepare`` writes them (:func:`engine.shards.prepare.prepare_shards`, planned by
:mod:`engine.shards.plan`); ``train --shards`` reads them (:mod:`engine.shard_training`). The format and
the image geometry are :mod:`engine.shards.format`. Torch-free except the device side of the stored JPEGs:
:mod:`engine.shards.jpeg_decode` (batched decoding, shared with training) and
:mod:`engine.shards.gpu_prepare` (the nvJPEG preparation).
"""
