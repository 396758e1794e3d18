"""Datasets: SoundingEarth as distributed, pair tables and the demo world.

Torch-free: ``records``, ``config``, ``images``, ``soundingearth``, ``pair_table``, ``splits``,
``source`` (:func:`~engine.data.source.open_source`) and ``cache``. The PyTorch datasets are in
``engine.data.datasets``.
"""
