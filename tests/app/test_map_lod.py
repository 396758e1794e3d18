"""The map's levels of detail (app.services.map_lod, MapView): the bucketed index finds exactly the
tiles a full scan finds, the tile under the cursor is the engine's exact lookup, and the heat pyramid's
levels are the averages of the finer cells."""

from __future__ import annotations

import numpy as np
import pytest

from app.services.map_layout import layout_tiles
from app.services.map_lod import HeatPyramid, TileBuckets, _halve
from engine.atlas import locate_tile, open_atlas
from engine.atlas.synthetic import write_synthetic_atlas


@pytest.fixture(scope="module")
def atlas(tmp_path_factory: pytest.TempPathFactory):
    root = write_synthetic_atlas(tmp_path_factory.mktemp("lod") / "atlas", 40_000, dim=8, seed=2)
    return open_atlas(root)


def test_buckets_find_what_a_full_scan_finds(atlas) -> None:
    layout = layout_tiles(atlas.tiles)
    buckets = TileBuckets(layout)
    west, south, east, north = layout.bounds
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = rng.uniform(0, 0.2) * (east - west)  # views from a few tiles to a fifth of the atlas
        x0, y0 = rng.uniform(west - w, east), rng.uniform(south - w, north)
        expected = layout.visible(x0, y0, x0 + w, y0 + w)
        np.testing.assert_array_equal(buckets.visible(x0, y0, x0 + w, y0 + w), expected)
    np.testing.assert_array_equal(buckets.visible(west, south, east, north), np.arange(layout.count))


def test_the_tile_under_the_cursor_is_the_exact_lookup(atlas, qtbot) -> None:
    from app.widgets.map_view import MapView

    view = MapView()
    qtbot.addWidget(view)
    view.set_atlas(layout_tiles(atlas.tiles), [], (np.zeros(0), np.zeros(0)), None, None)
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
