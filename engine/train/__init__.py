"""Training from a dataset, sample by sample: the loop, its run folder and log, its state (resumable).

The configuration is :mod:`engine.config`; training from prepared shards is :mod:`engine.shard_training`.
"""
