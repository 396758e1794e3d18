"""The imagery pyramid (engine.atlas.imagery_pyramid): each tile's colour lands where the map draws that
tile, at every level; cells without a tile stay transparent; it is made only where it adds detail over the
overview, and only again for sources that changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.atlas import build_atlas, open_atlas
from engine.atlas import imagery_pyramid as ip
from engine.atlas.tile_index import tile_index_of
from tests.engine.atlas.handmade import HandmadeBundle, mercator_scene


def _pixel(root: Path, spec: dict, s: int, level: int, x: float, y: float) -> np.ndarray | None:
    """The pyramid's RGBA at EPSG:3857 (x, y) on ``level``, None where no chunk was written."""
    side = spec["res"] * 2 ** level * spec["chunk_px"]
    cx, cy = int(np.floor((x - spec["origin"][0]) / side)), int(np.floor((spec["origin"][1] - y) / side))
    if [cx, cy] not in spec["levels"][level]:
        return None
    west, south, east, north = ip.chunk_bounds(spec, level, cx, cy)
    rgba = ip.load_chunk(root, s, level, cx, cy)
    h, w = rgba.shape[:2]
    return rgba[int((north - y) / (north - south) * h), int((x - west) / (east - west) * w)]


@pytest.fixture()
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """64 px chunks (a tile is 32 px at level 0: 2 x 2 tiles a chunk), and an overview as coarse as 4 tiles
    a pixel, so the 8 x 6-tile scene gets levels up to the one that is a single chunk."""
    monkeypatch.setattr(ip, "CHUNK_PX", 64)
    monkeypatch.setattr(ip, "_overview_resolution", lambda root, entry: 640.0 * 4)


def test_every_tile_shows_its_colour_where_the_map_draws_it(tmp_path: Path, bundle: HandmadeBundle,
                                                           small_chunks: None) -> None:
    scene, rgb, _ = mercator_scene(tmp_path / "scene.tif")
    root = tmp_path / "atlas"
    build_atlas(root, bundle.path, imagery=[scene], tile_px=64, thumbnail_px=64, search_index=False)
    meta = ip.read_pyramid_meta(root)
    assert meta is not None
    spec = meta["sources"]["0"]
    # 8 x 6 tiles of 640 m: 5120 x 3840 m; a level-0 chunk is 64 px of 20 m (1280 m), level 2's one chunk
    # (5120 m) holds them all: 3 levels (the overview alone would allow 7)
    assert spec["tiles"] == 48 and len(spec["levels"]) == 3
    assert spec["res"] == pytest.approx(640.0 / 32)  # a tile is 640 Mercator metres: 32 px
    atlas = open_atlas(root)
    index = tile_index_of(atlas)
    x, y = index.centres(np.arange(len(atlas.tiles)))
    for level in range(3):  # a tile is 32, 16, 8 px wide: its centre pixel is its own colour
        for i, (col, row) in enumerate(atlas.tiles.grid):
            got = _pixel(root, spec, 0, level, float(x[i]), float(y[i]))
            assert got is not None and got[3] == 255
            expected = rgb[row * 64 + 32, col * 64 + 32].astype(int)
            assert np.abs(got[:3].astype(int) - expected).max() <= 24, (level, col, row)
    # the nodata border (columns 0-1 of the scene) has no tile: transparent, or no chunk at all
    west_of_tiles = float(index.quads(np.arange(len(atlas.tiles)))[:, :, 0].min()) - 300.0
    for level in range(3):
        got = _pixel(root, spec, 0, level, west_of_tiles, float(y[0]))
        assert got is None or got[3] == 0
    # the top level is one chunk; every chunk listed is on disk, and nothing else is
    assert len(spec["levels"][-1]) == 1
    on_disk = {p.relative_to(root / ip.PYRAMID_FOLDER / "s0").as_posix() for p in (root / ip.PYRAMID_FOLDER / "s0").rglob("*.webp")}
    listed = {f"{lv}/{cx}_{cy}.webp" for lv, chunks in enumerate(spec["levels"]) for cx, cy in chunks}
    assert on_disk == listed


def test_made_only_where_it_adds_detail_and_only_again_for_changed_sources(
        tmp_path: Path, bundle: HandmadeBundle, monkeypatch: pytest.MonkeyPatch) -> None:
    scene, _, _ = mercator_scene(tmp_path / "scene.tif")
    root = tmp_path / "atlas"
    # The real overview of a 640 px scene is at its own 10 m pixels, finer than 32 px a tile: no levels.
    build_atlas(root, bundle.path, imagery=[scene], tile_px=64, thumbnail_px=64, search_index=False)
    meta = ip.read_pyramid_meta(root)
    assert meta is not None and meta["sources"]["0"]["levels"] == []
    assert not (root / ip.PYRAMID_FOLDER / "s0").exists()
    assert ip.update_imagery_pyramid(root) == 0  # up to date: nothing made again
    monkeypatch.setattr(ip, "CHUNK_PX", 64)
    monkeypatch.setattr(ip, "_overview_resolution", lambda root, entry: 640.0 * 4)
    assert ip.update_imagery_pyramid(root) == 0  # still up to date (same tiles, same file)
    other, _, _ = mercator_scene(tmp_path / "other.tif", seed=5)
    build_atlas(root, bundle.path, imagery=[scene, other], tile_px=64, thumbnail_px=64, search_index=False)
    meta = ip.read_pyramid_meta(root)
    assert meta["sources"]["0"]["levels"] == [] and len(meta["sources"]["1"]["levels"]) == 3
    (root / ip.PYRAMID_META).write_text("{ damaged")
    assert ip.read_pyramid_meta(root) is None  # the map then shows overviews and tiles as before


def test_homographies_map_each_quad_onto_the_thumbnail() -> None:
    rng = np.random.default_rng(0)
    quads = np.array([[0, 0], [30, 2], [33, 31], [-1, 29]], float)[None] + rng.normal(0, 0.5, (5, 4, 2))
    coeffs = ip._homographies(quads, 32, 32)
    corners = np.array([[0, 0], [32, 0], [32, 32], [0, 32]], float)
    for q, (a, b, c, d, e, f, g, h) in zip(quads, coeffs, strict=True):
        x, y = q[:, 0], q[:, 1]
        den = g * x + h * y + 1
        np.testing.assert_allclose(np.stack([(a * x + b * y + c) / den, (d * x + e * y + f) / den], 1), corners,
                                   atol=1e-9)
