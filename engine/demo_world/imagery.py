"""Aerial imagery of a window: each cover textured by kind, trees and buildings lit by the sun with
cast shadows, and the slow variations of a real mosaic (cloud shadows, haze, flight-strip colour).

The image of a window is a pure function of the plan and the coordinates (given a margin for
shadows), so the mosaic is rendered tile by tile and the per-point images are crops of it.
"""

from __future__ import annotations

import numpy as np

from engine.demo_world.config import LAYER
from engine.demo_world.fields import CROP
from engine.demo_world.land_cover import CoverWindow
from engine.demo_world.layout import Layout
from engine.demo_world.noise import fbm, hash_uniform, value_noise, worley

SHADOW_REACH_M = 40.0  # the tallest object (25 m) casts at most this far at the lowest sun (35 degrees)

# Display colours (sRGB, 0-1) of the covers and their variants.
SEA_DEEP = (0.05, 0.17, 0.26)
SEA_SHALLOW = (0.13, 0.36, 0.39)
FOAM = (0.86, 0.89, 0.89)
SAND_DRY = (0.80, 0.74, 0.58)
SAND_WET = (0.56, 0.51, 0.41)
RIVER = (0.12, 0.22, 0.22)
LAKE = (0.08, 0.17, 0.23)
BROADLEAF = (0.20, 0.34, 0.13)
AUTUMN = (0.45, 0.38, 0.14)
CONIFER = (0.09, 0.20, 0.11)
UNDERSTOREY = (0.10, 0.16, 0.07)
CROP_COLOURS = {
    CROP["pasture"]: (0.36, 0.51, 0.22), CROP["wheat"]: (0.74, 0.64, 0.36),
    CROP["green_cereal"]: (0.33, 0.50, 0.19), CROP["maize"]: (0.22, 0.38, 0.14),
    CROP["rapeseed"]: (0.84, 0.80, 0.22), CROP["ploughed"]: (0.40, 0.30, 0.21),
    CROP["stubble"]: (0.71, 0.65, 0.51), CROP["worked"]: (0.38, 0.28, 0.20),
}
GRASS = (0.37, 0.50, 0.22)
DRY_GRASS = (0.55, 0.55, 0.32)
REEDS = (0.42, 0.45, 0.26)
POOL = (0.12, 0.18, 0.17)
ASPHALT = (0.30, 0.30, 0.31)
ROAD_ASPHALT = (0.25, 0.25, 0.26)
PAVED = (0.56, 0.54, 0.50)
GARDEN = (0.32, 0.46, 0.20)
ROOFS = np.array([(0.58, 0.28, 0.20), (0.47, 0.25, 0.19), (0.36, 0.37, 0.39), (0.64, 0.63, 0.61),
                  (0.24, 0.24, 0.26), (0.52, 0.36, 0.26)], np.float32)
CARS = np.array([(0.8, 0.8, 0.82), (0.1, 0.1, 0.12), (0.6, 0.1, 0.1), (0.15, 0.25, 0.5), (0.5, 0.5, 0.52)],
                np.float32)
HAZE = (0.62, 0.67, 0.74)


def _rgb(c: tuple[float, float, float]) -> np.ndarray:
    return np.asarray(c, np.float32)


def _mix(a: np.ndarray | tuple, b: np.ndarray | tuple, t: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    t = np.asarray(t, np.float32)[..., None]
    return a * (1 - t) + b * t


def render(layout: Layout, cover: CoverWindow, xs: np.ndarray, ys: np.ndarray, pixel_m: float) -> np.ndarray:
    """RGB uint8 (len(ys), len(xs), 3) of a window. Pixels within ``SHADOW_REACH_M`` of the window's
    edge lack the shadows of objects outside it: render with that margin and crop."""
    seed = layout.seed + 1000
    s, layer = cover.scores, cover.layer
    h, w = layer.shape
    fine = value_noise(xs, ys, max(3.0, 1.5 * pixel_m), seed)
    mid = value_noise(xs, ys, 22.0, seed + 1)
    large = fbm(xs, ys, 240.0, seed + 2, 2)
    colour = np.empty((h, w, 3), np.float32)
    height = np.zeros((h, w), np.float32)
    tree_d, tree_id = worley(xs, ys, 6.0, seed + 3)

    def paint(mask: np.ndarray, rgb: np.ndarray) -> None:
        colour[mask] = rgb[mask] if rgb.ndim == 3 else rgb

    def trees(mask: np.ndarray, density: float, radius: float, tall: float, rgb: tuple, jitter: float) -> None:
        """Round crowns (a dome of ``radius`` m) on ``density`` of the cells inside ``mask``."""
        r = radius * (0.75 + 0.5 * tree_id)
        crown = mask & (tree_d < r) & (hash_uniform(seed + 4, (tree_id * 1e6).astype(np.int64)) < density)
        if not crown.any():
            return
        dome = np.sqrt(np.clip(1 - (tree_d / r) ** 2, 0, 1)) * r
        height[crown] = np.maximum(height[crown], (tall * (0.7 + 0.6 * tree_id) + dome)[crown])
        shade = (1 - jitter / 2 + jitter * tree_id)[..., None] * (0.92 + 0.16 * fine)[..., None]
        colour[crown] = (_rgb(rgb) * shade)[crown]

    # Sea: deeper is darker; swell lines parallel to the shore; foam in the surf zone.
    sea = layer == LAYER["sea"]
    if sea.any():
        d = np.clip(s.depth, 0, None)
        base = _mix(SEA_SHALLOW, SEA_DEEP, np.clip(d / 160.0, 0, 1) ** 0.6)
        swell = 1 + 0.05 * np.sin(2 * np.pi * d / 11.0 + 5 * mid)
        foam = np.clip(np.sin(2 * np.pi * d / 16.0 + 4 * mid) - 0.45, 0, 1) * 2.2 * np.exp(-d / 28.0)
        paint(sea, _mix(base * swell[..., None], FOAM, np.clip(foam, 0, 0.9)))
    beach = layer == LAYER["beach"]
    if beach.any():
        wet = np.clip(1 - (-s.depth) / 7.0, 0, 1)
        paint(beach, _mix(_rgb(SAND_DRY) * (0.93 + 0.1 * fine)[..., None], SAND_WET, wet))
    river = layer == LAYER["river"]
    if river.any():
        bank = np.clip(1 - (s.river.half_width - s.river.distance) / 3.0, 0, 1)
        paint(river, _mix(_mix(RIVER, (0.20, 0.24, 0.16), mid * 0.6), (0.10, 0.13, 0.09), bank * 0.6))
    lake = layer == LAYER["lake"]
    if lake.any():
        paint(lake, _mix(_mix(LAKE, (0.14, 0.24, 0.15), np.clip(mid - 0.3, 0, 1)), (0.2, 0.27, 0.15),
                         np.clip(s.lake - 0.85, 0, 1) * 5))

    # Fields: crop colour per parcel, tramlines or furrows across the sowing direction, edges.
    field = (layer >= LAYER["cereal"]) & (layer <= LAYER["pasture_grazed"])
    if field.any():
        crop = s.parcel.crop
        pid = s.parcel.parcel
        table = np.array([CROP_COLOURS[i] for i in range(len(CROP_COLOURS))], np.float32)
        base = table[crop] * (0.9 + 0.2 * pid)[..., None] * (0.94 + 0.12 * large)[..., None]
        row = s.parcel.row
        tram = (np.abs(((row + 9.0 * pid) % 20.0) - 10.0) < 0.9) & (crop != CROP["ploughed"]) & (crop != CROP["pasture"])
        base = np.where(tram[..., None], base * 0.8, base)
        furrow = 1 + 0.09 * np.sin(2 * np.pi * row / 5.0)
        ploughed = (crop == CROP["ploughed"]) | ((crop == CROP["worked"]) & (row < 25 + 90 * pid))
        base = np.where(ploughed[..., None], _rgb(CROP_COLOURS[CROP["ploughed"]]) * furrow[..., None]
                        * (0.9 + 0.15 * fine)[..., None], base)
        worked_rest = (crop == CROP["worked"]) & ~ploughed
        base = np.where(worked_rest[..., None], _rgb(CROP_COLOURS[CROP["stubble"]]) * (0.95 + 0.1 * fine)[..., None], base)
        grassy = (layer == LAYER["meadow"]) | (layer == LAYER["pasture_grazed"])
        meadow_rgb = _mix(GRASS, DRY_GRASS, np.clip(large * 1.4 - 0.35, 0, 1)) * (0.9 + 0.2 * mid)[..., None]
        base = np.where(grassy[..., None], meadow_rgb, base)
        margin = s.parcel.edge < 1.6 * max(1.0, pixel_m / 2)
        base = np.where(margin[..., None], _rgb((0.34, 0.42, 0.22)), base)
        paint(field, base)
        hedge = field & (s.parcel.edge < 4.0) & (hash_uniform(seed + 5, (pid * 1e6).astype(np.int64)) < 0.35)
        trees(hedge, 0.8, 3.0, 4.0, BROADLEAF, 0.3)
        trees(field & grassy, 0.03, 3.5, 5.0, BROADLEAF, 0.3)
        # A herd on grazed pastures: cows (1-2 px) gathered where the grass is best.
        grazed = layer == LAYER["pasture_grazed"]
        if grazed.any():
            herd = grazed & (value_noise(xs, ys, 45.0, seed + 12) > 0.55)
            cow_d, cow_id = worley(xs, ys, 7.0, seed + 13)
            cow = herd & (cow_d < max(1.1, 0.45 * pixel_m)) & (cow_id < 0.6) & (height < 0.5)
            coat = np.array([(0.92, 0.90, 0.86), (0.35, 0.22, 0.14), (0.12, 0.11, 0.10)], np.float32)
            colour[cow] = coat[np.minimum((cow_id[cow] / 0.2).astype(np.int64), 2)]
            height[cow] = 1.4

    # Woods: crowns over a dark understorey; some broadleaf stands turning.
    broad, conif = layer == LAYER["forest_broadleaf"], layer == LAYER["forest_conifer"]
    if broad.any() or conif.any():
        paint(broad | conif, _rgb(UNDERSTOREY) * (0.8 + 0.4 * fine)[..., None])
        tint = np.clip((fbm(xs, ys, 500.0, seed + 6, 2) - 0.55) * 4, 0, 0.8)
        leaf = _mix(BROADLEAF, AUTUMN, tint * tree_id)
        r = 3.8 * (0.75 + 0.5 * tree_id)
        crown = broad & (tree_d < r)
        dome = np.sqrt(np.clip(1 - (tree_d / r) ** 2, 0, 1)) * r
        height[crown] = (14.0 + 8.0 * tree_id + dome)[crown]
        colour[crown] = (leaf * (0.8 + 0.4 * tree_id)[..., None] * (0.9 + 0.2 * fine)[..., None])[crown]
        trees(conif, 0.97, 2.6, 16.0, CONIFER, 0.35)

    wet = layer == LAYER["wetland"]
    if wet.any():
        pools = value_noise(xs, ys, 14.0, seed + 7) * 0.6 + 0.4 * mid
        reeds = _mix(REEDS, (0.30, 0.36, 0.20), value_noise(xs, ys, 4.0, seed + 8)) * (0.9 + 0.2 * large)[..., None]
        paint(wet, _mix(reeds, POOL, np.clip((pools - 0.62) * 8, 0, 1)))
        trees(wet, 0.06, 3.0, 6.0, (0.24, 0.34, 0.17), 0.3)

    # Town: streets, pavements, roofs by colour class, gardens with trees.
    urban = (layer == LAYER["urban_dense"]) | (layer == LAYER["urban_suburb"])
    if urban.any():
        t = s.town
        roof = ROOFS[np.minimum((t.roof * len(ROOFS)).astype(np.int64), len(ROOFS) - 1)]
        base = np.where(t.building[..., None], roof * (0.94 + 0.1 * fine)[..., None],
                        np.where(t.street[..., None], _rgb(ASPHALT) * (0.95 + 0.08 * fine)[..., None],
                                 np.where(t.paved[..., None], _rgb(PAVED) * (0.92 + 0.12 * mid)[..., None],
                                          _rgb(GARDEN) * (0.85 + 0.3 * mid)[..., None])))
        paint(urban, base)
        height[urban & t.building] = t.height[urban & t.building]
        trees(urban & t.green, 0.35, 3.2, 6.0, BROADLEAF, 0.35)

    # Major roads: asphalt, dashed centre line, grass verges, traffic.
    road = layer == LAYER["road"]
    if road.any():
        r = s.road
        verge = r.distance > r.half_width - 2.2
        centre = np.clip(0.8 - r.distance / (0.6 * pixel_m), 0, 1) * ((r.along % 12.0) < 6.0)
        base = _mix(_rgb(ROAD_ASPHALT) * (0.95 + 0.1 * fine)[..., None], (0.85, 0.85, 0.82), centre * 0.8)
        base = np.where(verge[..., None], _rgb((0.40, 0.46, 0.27)) * (0.9 + 0.2 * mid)[..., None], base)
        slot = np.floor(r.along / 24.0).astype(np.int64) * 2 + (r.side > 0)
        present = hash_uniform(seed + 9, slot) < 0.3
        pos = r.along - (np.floor(r.along / 24.0) * 24.0 + 12.0)
        lane = np.abs(r.distance - (r.half_width - 2.2) * 0.5)
        car = road & present & (np.abs(pos) < 2.3) & (lane < 1.0) & ~verge
        car_rgb = CARS[np.minimum((hash_uniform(seed + 10, slot) * len(CARS)).astype(np.int64), len(CARS) - 1)]
        base = np.where(car[..., None], car_rgb, base)
        height[car] = 1.5
        paint(road, base)

    shade = _sun_shading(height, pixel_m, layout.sun_azimuth, layout.sun_elevation)
    rgb = colour * shade[..., None]
    rgb *= _atmosphere(layout, xs, ys)
    haze = (0.03 + 0.08 * fbm(xs, ys, 2600.0, seed + 11, 2))[..., None]
    rgb = rgb * (1 - haze) + _rgb(HAZE) * haze
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _sun_shading(height: np.ndarray, pixel_m: float, azimuth: float, elevation: float) -> np.ndarray:
    """Lambert shading of the height field's slopes and cast shadows (1 on flat sunlit ground)."""
    gy, gx = np.gradient(height, pixel_m)
    sun = np.array([np.sin(azimuth) * np.cos(elevation), -np.cos(azimuth) * np.cos(elevation), np.sin(elevation)])
    norm = np.sqrt(gx * gx + gy * gy + 1)
    lambert = np.clip((-gx * sun[0] - gy * sun[1] + sun[2]) / norm, 0, 1) / sun[2]
    ambient = 0.45
    lit = ambient + (1 - ambient) * np.clip(lambert, 0, 1.4)
    # March towards the sun: a pixel is shadowed if something ahead rises above the sun's ray.
    shadow = np.zeros(height.shape, bool)
    rise = np.tan(elevation) * pixel_m
    step = np.array([np.sin(azimuth), -np.cos(azimuth)])
    top = float(height.max())
    h, w = height.shape
    for k in range(1, int(np.ceil(top / rise)) + 1):
        dx, dy = (int(round(v)) for v in step * k)
        if dx == 0 and dy == 0:
            continue
        src = height[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)]
        dst = (slice(max(0, -dy), h + min(0, -dy)), slice(max(0, -dx), w + min(0, -dx)))
        shadow[dst] |= src > height[dst] + k * rise
    return np.where(shadow, ambient, lit).astype(np.float32)


def _atmosphere(layout: Layout, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Cloud shadows and the colour balance of the flight strips the mosaic was stitched from."""
    seed = layout.seed + 2000
    cloud = fbm(xs, ys, 1100.0, seed, 3)
    dim = 1 - 0.35 * np.clip((cloud - 0.6) * 6, 0, 1)
    strip_m = 1400.0
    pos = ys / strip_m
    k = np.floor(pos).astype(np.int64)
    blend = np.clip((pos - k - 0.5) * strip_m / 80.0 + 0.5, 0, 1)  # 80 m seams between strips
    gains = [1 + 0.05 * (hash_uniform(seed + c, k) - 0.5) * (1 - blend)
             + 0.05 * (hash_uniform(seed + c, k + 1) - 0.5) * blend for c in range(3)]
    balance = np.stack(gains, axis=-1)[:, None, :].astype(np.float32)
    return dim[..., None] * balance
