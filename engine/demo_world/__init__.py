"""The synthetic demo world: a procedural coastal region with land cover, a georeferenced aerial
mosaic, and recordings mixed from per-class sound sources, written as a pair table. Torch-free.

    from engine.demo_world import generate_world
    summary = generate_world("demo-world", seed=0, size="tiny")
"""

from engine.demo_world.config import CLASS_NAMES, CLASSES, SIZES, WorldSize
from engine.demo_world.generate import FORMAT, FORMAT_VERSION, WorldSummary, generate_world

__all__ = ["CLASSES", "CLASS_NAMES", "FORMAT", "FORMAT_VERSION", "SIZES", "WorldSize", "WorldSummary",
           "generate_world"]
