"""Datasets: SoundingEarth as distributed, pair tables and the demo world.

Torch-free: ``records``, ``images``, ``soundingearth``, ``pair_table``, ``splits``,
``source`` (:func:`~engine.data.source.open_source`) and ``cache``. The PyTorch datasets are in
``engine.data.datasets``; how a dataset is read (``DataConfig``) is :mod:`engine.config.data`.
"""
