"""The demo world's sizes, land-cover classes and the finer "sound layers" behind them.

Everything here is a constant or a frozen dataclass; nothing depends on the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.data.splits import SPLIT_NAMES
from engine.errors import ConfigError

CRS = "EPSG:32632"  # WGS 84 / UTM zone 32N: the world is placed on the Baltic coast of Schleswig-Holstein
ORIGIN_WEST = 560_000.0
ORIGIN_NORTH = 6_020_000.0
SAMPLE_RATE = 22_050
SPLITS = SPLIT_NAMES  # the values of the pair table's split column
SPLIT_PROPORTIONS = (0.70, 0.15, 0.15)


@dataclass(frozen=True)
class LandClass:
    index: int
    name: str
    colour: str  # for the land-cover map's colour table
    description: str


CLASSES: tuple[LandClass, ...] = (
    LandClass(0, "sea", "#1d4f7a", "open sea with surf along the coast"),
    LandClass(1, "beach", "#e3d3a2", "sand beach between the sea and the land"),
    LandClass(2, "freshwater", "#3f8fc4", "river and lakes"),
    LandClass(3, "forest", "#1f5e2a", "broadleaf and conifer woodland"),
    LandClass(4, "farmland", "#d9b755", "arable field parcels: cereals, maize, rapeseed, ploughed soil"),
    LandClass(5, "meadow", "#93c25b", "pasture and grassland"),
    LandClass(6, "wetland", "#6d8f7a", "marsh and reed beds by the river, lakes and coast"),
    LandClass(7, "urban", "#b54a3c", "town and villages: buildings, streets, gardens"),
    LandClass(8, "road", "#4a4a4a", "major roads"),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)


@dataclass(frozen=True)
class SoundLayer:
    """A finer land-cover code that sounds different (broadleaf vs conifer, a field being ploughed...).

    ``range_m`` is the e-folding distance of how far the layer is heard; ``level_db`` its loudness
    when it surrounds the recorder.
    """

    index: int
    name: str
    land_class: int
    range_m: float
    level_db: float


LAYERS: tuple[SoundLayer, ...] = (
    SoundLayer(0, "sea", 0, 220.0, -6.0),
    SoundLayer(1, "beach", 1, 60.0, -4.0),
    SoundLayer(2, "river", 2, 35.0, -6.0),
    SoundLayer(3, "lake", 2, 45.0, -14.0),
    SoundLayer(4, "forest_broadleaf", 3, 45.0, -6.0),
    SoundLayer(5, "forest_conifer", 3, 45.0, -6.0),
    SoundLayer(6, "cereal", 4, 60.0, -10.0),
    SoundLayer(7, "maize", 4, 50.0, -8.0),
    SoundLayer(8, "rapeseed", 4, 50.0, -8.0),
    SoundLayer(9, "bare_field", 4, 70.0, -14.0),
    SoundLayer(10, "farmland_worked", 4, 110.0, -2.0),
    SoundLayer(11, "meadow", 5, 40.0, -8.0),
    SoundLayer(12, "pasture_grazed", 5, 60.0, -6.0),
    SoundLayer(13, "wetland", 6, 50.0, -6.0),
    SoundLayer(14, "urban_dense", 7, 70.0, -4.0),
    SoundLayer(15, "urban_suburb", 7, 60.0, -8.0),
    SoundLayer(16, "road", 8, 110.0, 0.0),
)
LAYER_NAMES: tuple[str, ...] = tuple(layer.name for layer in LAYERS)
LAYER = {layer.name: layer.index for layer in LAYERS}


@dataclass(frozen=True)
class WorldSize:
    """How big a world is. Lengths in metres; the mosaic is ``extent_m / pixel_m`` pixels square."""

    name: str
    extent_m: float
    pixel_m: float
    image_px: int
    recordings: int
    clip_seconds: float
    block_m: float
    default_workers: int  # 1: run in this process (tiny); 0: a pool of all cores

    @property
    def mosaic_px(self) -> int:
        return int(round(self.extent_m / self.pixel_m))

    @property
    def image_m(self) -> float:
        return self.image_px * self.pixel_m


SIZES: dict[str, WorldSize] = {
    "tiny": WorldSize("tiny", 2048.0, 4.0, 64, 64, 3.0, 512.0, 1),
    "small": WorldSize("small", 4096.0, 2.0, 128, 400, 5.0, 1024.0, 0),
    "default": WorldSize("default", 8192.0, 2.0, 128, 2000, 5.0, 1024.0, 0),
}


def world_size(name: str) -> WorldSize:
    """Look up a size by name. Raises :class:`ConfigError` for an unknown name."""
    try:
        return SIZES[name]
    except KeyError:
        raise ConfigError("--size", f"unknown size {name!r}", f"use one of {', '.join(SIZES)}") from None
