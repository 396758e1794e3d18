"""The plan of a world, drawn from its seed: where the sea, river, lakes, roads, town and villages
lie, how farmland is divided, where the sun stands. Small enough to send to every worker; every
pixel of the world is then a pure function of this plan and its coordinates (see ``land_cover``).

Coordinates are metres from the north-west corner: x to the east, y to the south (raster rows).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from engine.demo_world.config import WorldSize
from engine.demo_world.geometry import Polyline, meander
from engine.demo_world.noise import fbm_1d


@dataclass(frozen=True)
class Town:
    x: float
    y: float
    radius: float       # the built-up area
    core_radius: float  # dense centre (0 for a village)
    angle: float        # street grid orientation (radians)
    block_m: float      # street spacing
    key: int            # seeds its buildings


@dataclass(frozen=True)
class FarmZone:
    """Parcels near this point run at ``angle`` in columns ``column_m`` wide."""

    x: float
    y: float
    angle: float
    column_m: float
    key: int


@dataclass(frozen=True)
class Lake:
    x: float
    y: float
    radius: float


@dataclass(frozen=True)
class Thresholds:
    """Field levels that give each cover its share of the land (set by ``land_cover.calibrate``)."""

    forest: float = 0.55
    conifer: float = 0.55
    wetland: float = 0.55
    commons: float = 0.7


@dataclass(frozen=True)
class Layout:
    extent_m: float
    seed: int
    sea_normal: tuple[float, float]  # unit vector pointing out to sea
    coast_offset: float
    coast_amplitudes: tuple[float, float, float]
    coast_cells: tuple[float, float, float]
    river: Polyline
    lakes: tuple[Lake, ...]
    roads: tuple[Polyline, ...]
    towns: tuple[Town, ...]
    farm_zones: tuple[FarmZone, ...]
    sun_azimuth: float    # direction towards the sun, radians clockwise from north
    sun_elevation: float  # radians
    thresholds: Thresholds = Thresholds()

    def coast_raw(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance-like coordinate towards the sea, before the coast offset."""
        c = self.extent_m / 2
        nx, ny = self.sea_normal
        u = (x - c) * nx + (y - c) * ny
        v = -(x - c) * ny + (y - c) * nx
        # The wiggle depends on v only: evaluate it on a global 1 m lattice and interpolate, so
        # every window sees exactly the same shoreline.
        lo, hi = int(np.floor(np.min(v))) - 1, int(np.ceil(np.max(v))) + 2
        lattice = np.arange(lo, hi, dtype=np.float64)
        wiggle = sum(a * (fbm_1d(lattice, cell, self.seed + 11 * i) - 0.5) * 2
                     for i, (a, cell) in enumerate(zip(self.coast_amplitudes, self.coast_cells, strict=True)))
        return u - np.interp(v, lattice, wiggle)

    def sea_depth(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Metres beyond the shoreline (positive at sea, negative inland)."""
        return self.coast_raw(x, y) - self.coast_offset

    def keep_inland(self, points: np.ndarray, inland_m: float) -> np.ndarray:
        """Move points (N, 2) straight inland until each is at least ``inland_m`` from the shore."""
        points = np.asarray(points, np.float64)
        depth = self.sea_depth(points[:, 0], points[:, 1])
        push = np.clip(depth + inland_m, 0, None)
        return points - np.outer(push, self.sea_normal)


def plan_world(seed: int, size: WorldSize) -> Layout:
    """Draw a world's plan from ``seed``. Thresholds are placeholders until ``calibrate``."""
    rng = np.random.default_rng([seed, 0x1A10])
    E = size.extent_m
    theta = rng.integers(4) * np.pi / 2 + rng.uniform(-0.45, 0.45)
    normal = (float(np.cos(theta)), float(np.sin(theta)))
    amplitudes = (0.07 * E, 0.018 * E, 6.0)
    cells = (0.45 * E, 0.09 * E, 45.0)
    layout = Layout(E, seed, normal, 0.0, amplitudes, cells, Polyline(np.zeros((2, 2)), np.ones(2)),
                    (), (), (), (), 0.0, 0.0)
    # The coast offset that leaves the chosen share of the region under water.
    grid = (np.arange(96) + 0.5) * E / 96
    raw = layout.coast_raw(grid[None, :], grid[:, None])
    offset = float(np.quantile(raw, 1.0 - rng.uniform(0.15, 0.22)))
    layout = dataclasses.replace(layout, coast_offset=offset)

    n = np.array(normal)
    tangent = np.array([-n[1], n[0]])
    centre = np.array([E / 2, E / 2])

    def shore_point(v: float, inland: float) -> np.ndarray:
        p = centre + tangent * v
        for _ in range(4):  # walk along the normal onto the shoreline, then inland
            p = p - n * float(layout.sea_depth(np.array([p[0]]), np.array([p[1]]))[0])
        return p - n * inland

    # Town near the coast, a river mouth beside it.
    town_r = float(np.clip(0.1 * E, 230.0, 900.0))
    v_town = rng.uniform(-0.22, 0.22) * E
    town_xy = _inside(shore_point(v_town, town_r * rng.uniform(1.0, 1.4)), E, town_r)
    towns = [Town(*town_xy, town_r, town_r * rng.uniform(0.4, 0.5), rng.uniform(0, np.pi / 2),
                  rng.uniform(70.0, 95.0), int(rng.integers(2**31)))]

    mouth_v = v_town + rng.choice([-1, 1]) * rng.uniform(0.9, 1.6) * town_r
    mouth = shore_point(mouth_v, -40.0)
    source = _clip_to_region(centre - n * 0.75 * E + tangent * rng.uniform(-0.3, 0.3) * E, E)
    river_pts = meander(rng, source, mouth, roughness=0.22, depth=6, smoothing=3)
    river = Polyline(river_pts, np.linspace(rng.uniform(7.0, 10.0), rng.uniform(18.0, 26.0), len(river_pts)))

    # Roads: one along the coast through the town, one inland from the town, one to each village.
    coast_inland = float(-layout.sea_depth(np.array([town_xy[0]]), np.array([town_xy[1]]))[0])
    start = shore_point(-0.8 * E, coast_inland)
    end = shore_point(0.8 * E, coast_inland)
    coastal = np.concatenate([meander(rng, start, town_xy, 0.08, 5, 3), meander(rng, town_xy, end, 0.08, 5, 3)[1:]])
    coastal = layout.keep_inland(coastal, 80.0)
    inland_dir = -n * np.cos(rng.uniform(-0.7, 0.7)) + tangent * rng.uniform(-0.6, 0.6)
    inland_end = _clip_to_region(town_xy + inland_dir / np.linalg.norm(inland_dir) * 1.2 * E, E, -20.0)
    inland = meander(rng, town_xy, inland_end, 0.1, 5, 3)
    roads = [Polyline(coastal, np.full(len(coastal), 14.0)), Polyline(inland, np.full(len(inland), 13.0))]

    villages = {"tiny": 0, "small": 1}.get(size.name, 3)
    for _ in range(villages):
        for _attempt in range(50):
            p = rng.uniform(0.1, 0.9, 2) * E
            depth = float(layout.sea_depth(np.array([p[0]]), np.array([p[1]]))[0])
            far = all(np.hypot(p[0] - t.x, p[1] - t.y) > t.radius + 900.0 for t in towns)
            if depth < -300.0 and far:
                break
        radius = rng.uniform(150.0, 240.0)
        towns.append(Town(float(p[0]), float(p[1]), radius, 0.0, rng.uniform(0, np.pi / 2),
                          rng.uniform(85.0, 110.0), int(rng.integers(2**31))))
        nearest = min((pt for r in roads for pt in r.points), key=lambda q: np.hypot(*(q - p)))
        link = layout.keep_inland(meander(rng, p, nearest, 0.1, 4, 2), 60.0)
        roads.append(Polyline(link, np.full(len(link), 10.0)))

    lakes = []
    for _ in range(max(1, round(E * E / 12e6))):
        for _attempt in range(60):
            p = rng.uniform(0.08, 0.92, 2) * E
            r = rng.uniform(45.0, 170.0 if E > 3000 else 90.0)
            depth = float(layout.sea_depth(np.array([p[0]]), np.array([p[1]]))[0])
            clear = all(np.hypot(p[0] - t.x, p[1] - t.y) > t.radius + r + 150 for t in towns)
            dry = np.min(np.hypot(*(river_pts - p).T)) > r + 120
            off_road = all(np.min(np.hypot(*(rd.points - p).T)) > r + 60 for rd in roads)
            if depth < -(r + 150) and clear and dry and off_road:
                lakes.append(Lake(float(p[0]), float(p[1]), float(r)))
                break

    zones = max(3, round(E * E / 2.4e6))
    farm = tuple(FarmZone(*(rng.uniform(0, E, 2)), rng.uniform(0, np.pi), rng.uniform(70.0, 150.0),
                          int(rng.integers(2**31))) for _ in range(zones))
    return dataclasses.replace(
        layout, river=river, lakes=tuple(lakes), roads=tuple(roads), towns=tuple(towns), farm_zones=farm,
        sun_azimuth=float(np.pi + rng.uniform(-0.8, 0.8)), sun_elevation=float(np.radians(rng.uniform(35, 55))))


def _clip_to_region(p: np.ndarray, extent: float, pad: float = 0.0) -> np.ndarray:
    return np.clip(p, -pad, extent + pad)


def _inside(p: np.ndarray, extent: float, margin: float) -> np.ndarray:
    return np.clip(p, margin, extent - margin)
