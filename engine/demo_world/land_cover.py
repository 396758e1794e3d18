"""Land cover of any window of the world, from the plan: sea and beach, river and lakes, roads,
towns, wetland, forest, farmland parcels and meadows. Also the per-pixel detail the imagery needs.

``classify(layout, xs, ys)`` is a pure function of the plan and the coordinates, so tiles computed in
different processes agree exactly along their borders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from engine.demo_world.config import LAYER, LAYERS
from engine.demo_world.fields import ParcelWindow, parcels
from engine.demo_world.geometry import PolylineField, polyline_field
from engine.demo_world.layout import Layout, Thresholds
from engine.demo_world.noise import fbm, value_noise
from engine.demo_world.town import TownWindow, add_town, empty_town_window

WETLAND_REACH_M = 260.0  # how far from water a marsh may spread
LAYER_TO_CLASS = np.array([layer.land_class for layer in LAYERS], dtype=np.uint8)
# The sound layer of each kind of parcel (see fields.CROPS); grazed pastures are set apart.
CROP_LAYER = np.array([LAYER[name] for name in ("meadow", "cereal", "cereal", "maize", "rapeseed", "bare_field",
                                                "bare_field", "farmland_worked")], dtype=np.uint8)


@dataclass
class Scores:
    """The continuous fields behind the classification (thresholded in :func:`classify`)."""

    depth: np.ndarray        # metres out to sea (negative inland)
    beach_width: np.ndarray
    river: PolylineField
    road: PolylineField
    lake: np.ndarray         # lake distance in radii (< 1 inside)
    lake_m: np.ndarray       # metres to the nearest lake shore (negative inside)
    town: TownWindow
    parcel: ParcelWindow
    forest: np.ndarray
    conifer: np.ndarray
    wetland: np.ndarray
    commons: np.ndarray
    dune: np.ndarray         # width of the grassy strip behind the beach


@dataclass
class CoverWindow:
    layer: np.ndarray        # uint8 sound-layer code (see config.LAYERS)
    scores: Scores

    @property
    def land_class(self) -> np.ndarray:
        return LAYER_TO_CLASS[self.layer]


def _roads(layout: Layout, xs: np.ndarray, ys: np.ndarray) -> PolylineField:
    best: PolylineField | None = None
    for road in layout.roads:
        field = polyline_field(xs, ys, road, margin=road.max_width / 2 + 30.0)
        if best is None:
            best = field
        else:
            closer = field.distance < best.distance
            for name in ("distance", "half_width", "along", "side"):
                getattr(best, name)[closer] = getattr(field, name)[closer]
    assert best is not None
    return best


def scores(layout: Layout, xs: np.ndarray, ys: np.ndarray) -> Scores:
    """Every field the classification thresholds, for the grid (ys rows, xs columns)."""
    seed = layout.seed
    X, Y = xs[None, :], ys[:, None]
    depth = layout.sea_depth(X, Y).astype(np.float32)
    beach_noise = value_noise(xs, ys, 380.0, seed + 21)
    beach_width = np.where(beach_noise > 0.3, 10.0 + 55.0 * (beach_noise - 0.3), 0.0).astype(np.float32)
    dune = (50.0 + 90.0 * value_noise(xs, ys, 260.0, seed + 22)).astype(np.float32)
    river = polyline_field(xs, ys, layout.river, margin=WETLAND_REACH_M)
    road = _roads(layout, xs, ys)
    lake = np.full((len(ys), len(xs)), np.inf, np.float32)
    lake_m = np.full_like(lake, np.inf)
    wobble = value_noise(xs, ys, 70.0, seed + 23)
    for lk in layout.lakes:
        dist = np.hypot(X - lk.x, Y - lk.y)
        radius = lk.radius * (0.75 + 0.5 * wobble)
        lake = np.minimum(lake, dist / radius)
        lake_m = np.minimum(lake_m, dist - radius)
    town = empty_town_window(depth.shape)
    for t in layout.towns:
        add_town(town, t, xs, ys)
    forest = 0.65 * fbm(xs, ys, 1500.0, seed + 31, 3) + 0.35 * fbm(xs, ys, 220.0, seed + 32, 2)
    conifer = fbm(xs, ys, 1300.0, seed + 33, 2)
    near_water = np.maximum.reduce([
        np.clip(1.0 - (river.distance - river.half_width) / WETLAND_REACH_M, 0.0, 1.0),
        np.clip(1.0 + depth / 420.0, 0.0, 1.0) * (depth <= 0),
        np.clip(1.0 - lake_m / 160.0, 0.0, 1.0),
    ])
    wetland = near_water ** 0.8 * fbm(xs, ys, 300.0, seed + 34, 3)
    commons = value_noise(xs, ys, 650.0, seed + 35)
    return Scores(depth, beach_width, river, road, lake, lake_m, town, parcels(layout.farm_zones, xs, ys),
                  forest, conifer, wetland, commons, dune)


def classify(layout: Layout, xs: np.ndarray, ys: np.ndarray) -> CoverWindow:
    """Sound-layer codes (uint8) and the detail fields of the window; later rules override earlier."""
    s = scores(layout, xs, ys)
    t = layout.thresholds
    layer = CROP_LAYER[s.parcel.crop]
    layer[s.parcel.grazed] = LAYER["pasture_grazed"]
    layer[s.commons > t.commons] = LAYER["meadow"]
    forest = s.forest > t.forest
    layer[forest] = np.where(s.conifer[forest] > t.conifer, LAYER["forest_conifer"], LAYER["forest_broadleaf"])
    inland = -s.depth
    layer[(inland > s.beach_width) & (inland < s.beach_width + s.dune)] = LAYER["meadow"]
    layer[s.wetland > t.wetland] = LAYER["wetland"]
    layer[s.town.urban] = LAYER["urban_suburb"]
    layer[s.town.core] = LAYER["urban_dense"]
    layer[s.lake < 1.0] = LAYER["lake"]
    layer[s.river.distance < s.river.half_width] = LAYER["river"]
    layer[(inland >= 0) & (inland < s.beach_width)] = LAYER["beach"]
    layer[(s.road.distance < s.road.half_width) & (s.depth < 0)] = LAYER["road"]
    layer[s.depth >= 0] = LAYER["sea"]
    return CoverWindow(layer, s)


def calibrate(layout: Layout, spacing_m: float = 32.0) -> Layout:
    """Set the thresholds so forest, wetland and commons take their intended shares of the land.

    The shares come from the seed (forest 24-32 % of open land, wetland ~6 %, commons ~12 % of
    farmland); they are measured on a coarse grid over the whole world.
    """
    rng = np.random.default_rng([layout.seed, 0xCA1])
    grid = (np.arange(int(layout.extent_m // spacing_m)) + 0.5) * spacing_m
    s = scores(layout, grid, grid)
    water = (s.depth >= -s.beach_width) | (s.lake < 1.0) | (s.river.distance < s.river.half_width)
    open_land = ~water & ~s.town.urban & ~(s.road.distance < s.road.half_width)
    wetland_t = float(np.quantile(s.wetland[open_land], 1.0 - rng.uniform(0.05, 0.08)))
    dry = open_land & (s.wetland <= wetland_t)
    forest_t = float(np.quantile(s.forest[dry], 1.0 - rng.uniform(0.26, 0.34)))
    woods = dry & (s.forest > forest_t)
    conifer_t = float(np.quantile(s.conifer[woods], 1.0 - rng.uniform(0.35, 0.5))) if woods.any() else 0.5
    fields = dry & ~woods
    commons_t = float(np.quantile(s.commons[fields], 1.0 - rng.uniform(0.1, 0.15))) if fields.any() else 0.9
    return dataclasses.replace(layout, thresholds=Thresholds(forest_t, conifer_t, wetland_t, commons_t))
