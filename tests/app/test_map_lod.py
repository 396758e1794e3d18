"""The map's levels of detail (engine.atlas.tile_index, app.services.map_lod, MapView): the tile index
finds exactly the tiles a full scan of independently computed boxes finds, the stored index is the one
computed in memory, the tile under the cursor is the engine's exact lookup, and the heat pyramid's levels
are the averages of the finer cells, and heat cells are the same rasterised as a reshape (whole images in
scan order) or cell by cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.services.geo import lonlat_to_mercator
from app.services.map_layout import TileLayout, layout_atlas, layout_tiles
from app.services.map_lod import HeatPyramid, _halve
from engine.atlas import locate_tile, open_atlas
from engine.atlas.synthetic import write_synthetic_atlas
from engine.atlas.tile_index import compute_tile_index, read_tile_index


@pytest.fixture(scope="module")
def atlas(tmp_path_factory: pytest.TempPathFactory):
    root = write_synthetic_atlas(tmp_path_factory.mktemp("lod") / "atlas", 40_000, dim=8, seed=2)
    return open_atlas(root)


def test_the_index_finds_what_a_full_scan_finds(atlas) -> None:
    fp = np.asarray(atlas.tiles.footprints)  # no tile near the antimeridian: drawn where its corners are
    fx, fy = lonlat_to_mercator(fp[..., 0], fp[..., 1])
    x0, x1, y0, y1 = fx.min(1), fx.max(1), fy.min(1), fy.max(1)
    layout = layout_atlas(atlas)
    # (the placement rounds longitudes through unwrapping: equal to a few ulps)
    np.testing.assert_allclose(layout.bounds, (x0.min(), y0.min(), x1.max(), y1.max()), rtol=1e-12)
    west, south, east, north = layout.bounds
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = rng.uniform(0, 0.2) * (east - west)  # views from a few tiles to a fifth of the atlas
        a, b = rng.uniform(west - w, east), rng.uniform(south - w, north)
        expected = np.flatnonzero((x1 >= a) & (x0 <= a + w) & (y1 >= b) & (y0 <= b + w))
        np.testing.assert_array_equal(layout.visible(a, b, a + w, b + w), expected)
    np.testing.assert_array_equal(layout.visible(west, south, east, north), np.arange(layout.count))
    assert layout.visible(east + 1, south, east + 2, north).size == 0
    np.testing.assert_allclose(layout.quad(1234), np.stack([fx[1234], fy[1234]], axis=1))


def test_the_stored_index_is_the_computed_one_and_a_stale_one_is_not_used(atlas, tmp_path) -> None:
    stored = read_tile_index(atlas.path, atlas.tiles)  # written by the synthetic atlas, as by a build
    assert stored is not None and isinstance(stored.order, np.memmap)
    computed = compute_tile_index(atlas.tiles)
    np.testing.assert_array_equal(np.asarray(stored.order), computed.order)
    np.testing.assert_array_equal(np.asarray(stored.starts), computed.starts)
    assert stored.bounds == computed.bounds and stored.grids == computed.grids
    other = write_synthetic_atlas(tmp_path / "other", 900, dim=8, seed=3)  # another atlas: not its index
    assert read_tile_index(atlas.path, open_atlas(other).tiles) is None


def test_the_tile_under_the_cursor_is_the_exact_lookup(atlas, qtbot) -> None:
    from app.widgets.map_view import MapView

    view = MapView()
    qtbot.addWidget(view)
    view.set_atlas(layout_atlas(atlas), [], (np.zeros(0), np.zeros(0)), None, None)
    fp = np.asarray(atlas.tiles.footprints)
    rng = np.random.default_rng(1)
    lon = rng.uniform(fp[..., 0].min() - 0.01, fp[..., 0].max() + 0.01, 300)
    lat = rng.uniform(fp[..., 1].min() - 0.01, fp[..., 1].max() + 0.01, 300)
    found = [view.tile_at(a, b) for a, b in zip(lon, lat, strict=True)]
    assert found == [locate_tile(atlas, a, b) for a, b in zip(lon, lat, strict=True)]
    assert sum(f is None for f in found) > 0 and sum(f is not None for f in found) > 200  # both cases seen
    view.stop_timers()


def test_heat_pyramid_levels_average_the_finer_cells_and_follow_the_zoom(atlas, qtbot) -> None:
    rgba = np.zeros((3, 3, 4), np.uint8)
    rgba[0, 0] = (200, 0, 0, 255)
    rgba[0, 1] = (0, 100, 0, 255)
    rgba[1, 0] = (0, 0, 60, 255)  # (1, 1) transparent: it must not darken the average
    top_left = _halve(rgba)[0, 0]
    np.testing.assert_array_equal(top_left, [67, 33, 20, 191])  # mean of three colours, alpha 3/4
    pyramid = HeatPyramid(np.zeros((1000, 700, 4), np.uint8), (10.0, 0.0, 5.0, 0.0, -10.0, 9.0), smallest=256)
    assert [lv.rgba.shape[:2] for lv in pyramid.levels] == [(1000, 700), (500, 350), (250, 175)]
    assert pyramid.levels[2].affine == (40.0, 0.0, 5.0, 0.0, -40.0, 9.0)
    assert pyramid.choose(1.0) == 0 and pyramid.choose(20.0) == 2 and pyramid.choose(10.0) == 1

    from app.widgets.map_view import MapView

    view = MapView()
    qtbot.addWidget(view)
    view.set_atlas(layout_tiles(atlas.tiles), [], (np.zeros(0), np.zeros(0)), None, None)
    view.set_heat(np.asarray(atlas.tiles.lon))
    from PySide6.QtCore import QRectF

    west, south, east, north = view.tile_layout.bounds
    side = 4 * (east - west)
    view.view.setRange(QRectF(west - side / 2, south - side / 2, side, side), padding=0)  # zoomed far out
    zoomed_out = view.heat_levels_shown()[0]
    view.centre_on(float(atlas.tiles.lon[500]), float(atlas.tiles.lat[500]))
    view.stop_timers()
    # 200 x 200 cells on about 150 px: a coarser level when zoomed out, one cell per tile up close.
    assert zoomed_out > 0 and view.heat_levels_shown()[0] == 0


def test_heat_cells_are_the_same_as_a_reshape_and_cell_by_cell(tmp_path: Path) -> None:
    atlas = open_atlas(write_synthetic_atlas(tmp_path / "s", 23 * 17 - 5, dim=8))  # a last row not full
    index = compute_tile_index(atlas.tiles)
    assert index.grids[0].dense_start == 0 and index.grids[0].dense_count == len(atlas.tiles)
    values = np.random.default_rng(4).normal(size=len(atlas.tiles))
    values[[3, 50, 200]] = np.nan
    lut = np.random.default_rng(5).integers(0, 255, (256, 3)).astype(np.uint8)
    fast = TileLayout(atlas.tiles, index).rasterise(values, lut, (-2.0, 2.0), nan_rgba=(1, 2, 3, 4))
    general = compute_tile_index(atlas.tiles)
    object.__setattr__(general.grids[0], "dense_start", None)  # the cell-by-cell path over the same tiles
    slow = TileLayout(atlas.tiles, general).rasterise(values, lut, (-2.0, 2.0), nan_rgba=(1, 2, 3, 4))
    np.testing.assert_array_equal(fast[0][0], slow[0][0])
    rgba = fast[0][0]
    col, row = (int(v) for v in atlas.tiles.grid[50])
    assert tuple(rgba[row, col]) == (1, 2, 3, 4)  # no value
    col, row = (int(v) for v in atlas.tiles.grid[7])
    code = int(np.clip((values[7] + 2) / 4 * 255, 0, 255))
    assert tuple(rgba[row, col]) == (*lut[code], 255)
    assert (rgba.reshape(-1, 4)[len(atlas.tiles):] == 0).all()  # the cells past the last tile stay empty


def test_a_source_wider_than_the_largest_image_gets_cells_of_several_tiles(tmp_path: Path, monkeypatch) -> None:
    import engine.atlas.tile_index as tile_index

    monkeypatch.setattr(tile_index, "MAX_GRID_SIDE", 8)
    atlas = open_atlas(write_synthetic_atlas(tmp_path / "s", 20 * 19 + 7, dim=8))  # 20 tiles wide
    index = compute_tile_index(atlas.tiles)
    spec = index.grids[0]
    assert spec.step == 3 and spec.shape == (7, 7)  # ceil(20 / 8) tiles a cell side; 20 rows and columns
    values = np.arange(len(atlas.tiles), dtype=np.float64)
    lut = np.stack([np.arange(256)] * 3, axis=1).astype(np.uint8)
    fast = TileLayout(atlas.tiles, index).rasterise(values, lut, (0.0, 255.0))[0][0]
    object.__setattr__(spec, "dense_start", None)
    slow = TileLayout(atlas.tiles, index).rasterise(values, lut, (0.0, 255.0))[0][0]
    np.testing.assert_array_equal(fast, slow)
    for row, col in ((0, 0), (2, 5), (6, 6)):  # each cell shows its top-left tile: row-major number
        tile = 3 * row * 20 + 3 * col
        expected = (min(tile, 255),) * 3 + (255,) if tile < len(atlas.tiles) else (0, 0, 0, 0)
        assert tuple(fast[row, col]) == expected
    (a, b, c, d, e, f), (x, y) = spec.affine, index.centres(np.array([3 * 2 * 20 + 3 * 5]))
    corner_x, corner_y = a * 5 + b * 2 + c, d * 5 + e * 2 + f  # cell (2, 5)'s top-left corner
    tile_w = index.tile_width
    assert abs(corner_x - (x[0] - tile_w / 2)) < 0.01 * tile_w and corner_y > y[0]


def _grid_of_sources(n_side: int, size: float = 1000.0) -> list[tuple[float, float, float, float]]:
    return [(c * size, r * size, (c + 1) * size - 1, (r + 1) * size - 1) for r in range(n_side) for c in range(n_side)]


def test_overviews_are_chosen_by_view_and_the_mosaic_covers_many_sources() -> None:
    from app.services.map_overviews import MAX_SOURCES_IN_VIEW, SourceOverviews

    bounds = _grid_of_sources(20)  # 400 sources of 1 km
    with_mosaic = SourceOverviews(bounds, load=lambda k: np.zeros((1, 1, 4), np.uint8), load_mosaic=lambda: None)
    assert with_mosaic.choose((0, 0, 20_000, 20_000), 20.0) == []  # all 400 in view: the mosaic alone
    near = with_mosaic.choose((2500, 2500, 4500, 4500), 2.0)  # about 3 x 3 sources, each 500 px wide
    assert sorted(near) == sorted(r * 20 + c for r in (2, 3, 4) for c in (2, 3, 4))
    assert with_mosaic.choose((2500, 2500, 4500, 4500), 100.0) == []  # each 10 px: the mosaic is as good
    without = SourceOverviews(bounds, load=lambda k: np.zeros((1, 1, 4), np.uint8))  # an older atlas
    assert len(without.choose((0, 0, 20_000, 20_000), 20.0)) == MAX_SOURCES_IN_VIEW  # some rather than none
    assert SourceOverviews([None, (0, 0, 10, 10)], load=lambda k: None).choose((0, 0, 10, 10), 1.0) == [1]


def test_the_map_decodes_only_the_overviews_a_view_needs_in_the_background(atlas, qtbot) -> None:
    import threading

    from app.services.map_overviews import SourceOverviews
    from app.widgets.map_view import MOSAIC, MapView

    layout = layout_atlas(atlas)
    west, south, east, north = layout.bounds
    side = (east - west) / 20
    bounds = [(west + c * side, south + r * side, west + (c + 1) * side, south + (r + 1) * side)
              for r in range(20) for c in range(20)]
    loads: list[int] = []
    mosaic = (np.full((64, 64, 4), 200, np.uint8), (west, south, east, north))

    def load(k: int) -> np.ndarray:
        loads.append(k)
        if k == 5:
            raise OSError("damaged overview")
        return np.full((32, 32, 4), 100, np.uint8)

    view = MapView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.set_atlas(layout, [], (np.zeros(0), np.zeros(0)), None, None, SourceOverviews(bounds, load, lambda: mosaic))
    qtbot.waitUntil(lambda: view.overviews_shown() == [MOSAIC])
    assert loads == []  # the whole atlas in view: 400 sources, none decoded
    cx, cy = west + 7.5 * side, south + 3.5 * side  # the middle of source 3 * 20 + 7
    from PySide6.QtCore import QRectF

    view.view.setRange(QRectF(cx - side, cy - side, 2 * side, 2 * side), padding=0)
    qtbot.waitUntil(lambda: 67 in view.overviews_shown())
    assert set(view.overviews_shown()) - {MOSAIC} <= {r * 20 + c for r in (2, 3, 4) for c in (6, 7, 8)}
    assert set(loads) == set(view.overviews_shown()) - {MOSAIC} and len(loads) == len(set(loads))
    view.view.setRange(QRectF(west, south, side, side), padding=0)  # source 0 and its damaged neighbour 5? no: 0, 1, 20, 21
    qtbot.waitUntil(lambda: 0 in view.overviews_shown())
    view.view.setRange(QRectF(west + 4.5 * side, south, side, side), padding=0)
    qtbot.waitUntil(lambda: 5 in loads)
    qtbot.wait(100)
    assert 5 not in view.overviews_shown() and 4 in view.overviews_shown()  # the damaged one is skipped
    view.stop_timers()
    qtbot.waitUntil(lambda: not any(t.name.startswith("map-overviews") for t in threading.enumerate()))


def test_an_atlas_of_many_sources_is_one_heat_picture_from_afar_and_per_source_up_close(tmp_path: Path,
                                                                                        qtbot) -> None:
    from PySide6.QtCore import QRectF

    from app.widgets.map_view import MapView

    atlas = open_atlas(write_synthetic_atlas(tmp_path / "m", 60 * 60, dim=8, sources=16))  # 4 x 4 sources
    layout = layout_atlas(atlas)
    assert len(atlas.sources) == 16 and layout.atlas_grid is not None
    values = np.random.default_rng(6).uniform(0, 1, len(atlas.tiles))
    lut = np.stack([np.arange(256)] * 3, axis=1).astype(np.uint8)
    rgba, (a, b, c, d, e, f) = layout.rasterise_atlas(values, lut, (0.0, 1.0))
    x, y = layout.index.centres(np.arange(len(atlas.tiles)))
    for i in (0, 77, 1800, 3599):  # each tile's cell holds its value (cells are a tile here: 60 x 60)
        col, row = int((x[i] - c) / a), int((y[i] - f) / e)
        assert tuple(rgba[row, col]) == (int(values[i] * 255),) * 3 + (255,)
    assert (rgba[..., 3] > 0).sum() == len(atlas.tiles)

    view = MapView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.set_atlas(layout, [], (np.zeros(0), np.zeros(0)), None, None)
    view.set_heat(values)
    west, south, east, north = layout.bounds
    view.view.setRange(QRectF(west, south, east - west, north - south), padding=0)  # the whole atlas
    assert view._heat_atlas_item.isVisible() and not any(item is not None and item.isVisible() for item in view._heat_items)
    tile = layout.median_tile_width()
    view.view.setRange(QRectF(west, south, 10 * tile, 10 * tile), padding=0)  # 40 px tiles
    assert view._heat_atlas_item.isVisible()  # its cells are tiles already: still the one picture
    view.stop_timers()

    coarse = open_atlas(write_synthetic_atlas(tmp_path / "c", 60 * 60, dim=8, sources=4))
    import app.services.map_layout as map_layout

    original = map_layout.ATLAS_GRID_SIDE
    map_layout.ATLAS_GRID_SIDE = 20  # cells of 3 x 3 tiles: per source once they are wider than 2 px
    try:
        layout = layout_atlas(coarse)
        view = MapView()
        qtbot.addWidget(view)
        view.resize(400, 300)
        view.set_atlas(layout, [], (np.zeros(0), np.zeros(0)), None, None)
        view.set_heat(values)
        west, south, east, north = layout.bounds
        far = 20 * (east - west)  # the atlas 20 px wide: its 3-tile cells are sub-pixel
        view.view.setRange(QRectF(west - far / 2, south - far / 2, far, far), padding=0)
        assert view._heat_atlas_item.isVisible() and not any(item is not None and item.isVisible() for item in view._heat_items)
        view.view.setRange(QRectF(west, south, east - west, north - south), padding=0)  # cells of 20 px
        assert not view._heat_atlas_item.isVisible() and len(view._heat_items) == 4
        assert all(item.isVisible() for item in view._heat_items)
        view.stop_timers()
    finally:
        map_layout.ATLAS_GRID_SIDE = original
