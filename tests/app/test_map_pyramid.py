"""The imagery pyramid on the map (app.services.map_overviews, MapView): the level chosen follows the zoom
(as fine as the screen, never past the overview), only the chunks in view are decoded, and what the
screen shows between the overview and the tiles is the pyramid's picture, not the overview blown up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.services.map_layout import layout_atlas
from app.services.map_overviews import SourceOverviews
from engine.atlas import build_atlas, open_atlas
from engine.atlas import imagery_pyramid as ip
from engine.atlas.synthetic import write_synthetic_atlas
from tests.engine.atlas.handmade import make_bundle, mercator_scene


@pytest.fixture(scope="module")
def pyramid_atlas(tmp_path_factory: pytest.TempPathFactory):
    """The 8 x 6-tile Mercator scene with 64 px chunks and an overview as coarse as 4 tiles a pixel."""
    folder = tmp_path_factory.mktemp("pyramid")
    bundle = make_bundle(folder / "bundle", seed=0)
    scene, _, _ = mercator_scene(folder / "scene.tif")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ip, "CHUNK_PX", 64)
        mp.setattr(ip, "_overview_resolution", lambda root, entry: 640.0 * 4)
        build_atlas(folder / "atlas", bundle.path, imagery=[scene], tile_px=64, thumbnail_px=64, search_index=False)
    return open_atlas(folder / "atlas")


def test_the_level_follows_the_zoom_and_only_chunks_in_view_are_chosen(pyramid_atlas) -> None:
    provider = SourceOverviews.of_atlas(pyramid_atlas)
    assert provider.pyramids is not None and set(provider.pyramids) == {0}
    spec = provider.pyramids[0]
    res, levels = spec["res"], len(spec["chunks"])
    assert res == pytest.approx(20.0) and levels == 3 and spec["overview_res"] == 2560.0
    west, south, east, north = layout_atlas(pyramid_atlas).bounds
    whole = (west, south, east, north)
    for level in range(levels):
        chosen = provider.choose_chunks(whole, res * 2 ** level * 1.3, [0])
        assert {c[1] for c in chosen} == {level}  # the coarsest level still as fine as the screen
        assert sorted(c[2:] for c in chosen) == sorted(spec["chunks"][level])  # the whole source: every chunk
    assert {c[1] for c in provider.choose_chunks(whole, res / 3, [0])} == {0}  # closer than level 0: level 0
    assert {c[1] for c in provider.choose_chunks(whole, 1000.0, [0])} == {2}  # the top level up to the overview
    assert provider.choose_chunks(whole, 2560.0, [0]) == []  # as coarse as the overview: the overview
    assert provider.choose_chunks(whole, 30.0, []) == []  # a source whose overview is not drawn: nothing
    # A view over one level-0 chunk: that chunk, and its neighbours only where the view reaches them
    w0, s0, e0, n0 = ip.chunk_bounds(spec, 0, 1, 1)
    inside = provider.choose_chunks((w0 + 100, s0 + 100, e0 - 100, n0 - 100), 25.0, [0])
    assert inside == [(0, 0, 1, 1)]
    for key in provider.choose_chunks(whole, 25.0, [0]):  # each chosen chunk loads as its bounds say
        rgba = provider.load_chunk(key)
        assert rgba.shape == (64, 64, 4) and rgba[..., 3].max() == 255


def test_the_screen_shows_the_pyramid_between_the_overview_and_the_tiles(tmp_path: Path, qtbot) -> None:
    """A fake atlas of one source: its overview is red, its pyramid chunks green; the pixel at the view's
    centre is green zoomed in, red zoomed out (and no chunk is decoded zoomed out)."""
    from app.widgets.map_view import MapView

    atlas = open_atlas(write_synthetic_atlas(tmp_path / "a", 10_000, dim=8, seed=1))
    layout = layout_atlas(atlas)
    west, south, east, north = layout.bounds
    res = (east - west) / 4096  # level 0: 4096 px across the source, 4 x 4 chunks of 1024; the overview 1024 px
    spec = {"res": res, "chunk_px": 1024, "origin": [west, north], "overview_res": (east - west) / 1024,
            "chunks": [{(cx, cy) for cx in range(4 >> lv) for cy in range(4 >> lv)} for lv in range(2)]}
    loads: list[tuple] = []

    def load_chunk(key: tuple) -> np.ndarray:
        loads.append(key)
        return np.tile(np.array([30, 200, 60, 255], np.uint8), (1024, 1024, 1))

    provider = SourceOverviews([(west, south, east, north)], load=lambda k: np.tile(
        np.array([220, 30, 30, 255], np.uint8), (1024, 1024, 1)), pyramids={0: spec}, load_chunk=load_chunk)
    view = MapView()
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.set_atlas(layout, [], (np.zeros(0), np.zeros(0)), None, None, provider)
    view.show()
    try:
        _zoom_in_and_out(view, qtbot, layout.bounds, res, loads)
    finally:
        view.stop_timers()


def _zoom_in_and_out(view, qtbot, bounds, res: float, loads: list) -> None:  # noqa: ANN001
    from PySide6.QtCore import QPointF, QRectF

    west, south, east, north = bounds

    def centre_colour() -> tuple[int, int, int]:
        view.settle()
        image = view.canvas.grab().toImage()
        scene = view.view.mapViewToScene(QPointF(*view.view.viewRect().center().toTuple()))
        point = view.canvas.mapFromScene(scene)
        c = image.pixelColor(point.x(), point.y())
        return c.red(), c.green(), c.blue()

    view.view.setRange(QRectF(west, south, east - west, north - south), padding=0)
    qtbot.waitUntil(lambda: view.overviews_shown() == [0])
    r, g, b = centre_colour()
    # 640 px across: the 1024 px overview is as fine as the screen; nothing decoded
    assert r > 150 and g < 80 and view.chunks_shown() == [] and loads == []
    quarter = (east - west) / 6
    cx, cy = west + (east - west) * 0.4, south + (north - south) * 0.55
    view.view.setRange(QRectF(cx - quarter / 2, cy - quarter / 2, quarter, quarter), padding=0)
    qtbot.waitUntil(lambda: len(view.chunks_shown()) > 0)
    r, g, b = centre_colour()
    assert g > 150 and r < 80  # the pyramid's picture, drawn over the overview
    px = view.mercator_per_pixel()
    levels = {k[1] for k in view.chunks_shown()}
    assert levels == {max([lv for lv in range(2) if res * 2 ** lv <= px], default=0)}
    assert set(loads) == set(view.chunks_shown())  # only the chunks in view were decoded
    view.view.setRange(QRectF(west, south, east - west, north - south), padding=0)  # out again: the overview
    qtbot.waitUntil(lambda: view.chunks_shown() == [])
    r, g, b = centre_colour()
    assert r > 150 and g < 80
