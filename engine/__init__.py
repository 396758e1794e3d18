"""Soundscape Mapper engine: data, models, losses, training, evaluation, export and atlas building.

The sub-modules ``engine.audio``, ``engine.errors``, ``engine.bundle``, ``engine.geo``,
``engine.atlas`` and ``engine.demo_world`` are torch-free, so the desktop app can use them.
"""

__version__ = "0.1.0"
