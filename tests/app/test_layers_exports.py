"""The map layer chooser, the clicked tile's predicted soundscape and File > Export, driven through the
window and checked against the engine's predictor computed here and against the files read back with
rasterio, pyogrio and csv."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.state.layer_state import IMAGERY, SIMILARITY
from app.widgets.layers_control import NO_VALUE_RGBA
from tests.app.layer_fixtures import INDEX_NAMES, NAN_INDEX, folder_digest, make_indices_atlas


@pytest.fixture(scope="module")
def indices_atlas(tmp_path_factory: pytest.TempPathFactory, built_atlas: Path) -> Path:
    return make_indices_atlas(tmp_path_factory.mktemp("layers") / "atlas", built_atlas)


def predictor_of(path: Path):
    from engine.atlas.format import open_atlas
    from engine.ecology.maps import SoundscapePredictor

    return SoundscapePredictor(open_atlas(path))


def choose(h, key: str) -> None:
    combo = h.window.layers_control.combo
    combo.setCurrentIndex(combo.findData(key))
    combo.activated.emit(combo.currentIndex())  # what a user's pick emits
    h.wait_idle()
    h.qtbot.waitUntil(lambda: h.state.layers.current.key == key)


def drawn_colours(map_view) -> np.ndarray:
    """Each tile's RGBA as the map's heat items hold it (read back per source grid)."""
    out = np.zeros((map_view.tile_layout.count, 4), np.uint8)
    for grid, item in zip(map_view.tile_layout.grids, map_view._heat_items, strict=True):
        out[grid.tiles] = item.image[grid.rows, grid.cols]
    return out


def click_tile(h, tile: int) -> None:
    atlas = h.state.project.atlas
    pos = h.window.map.lonlat_to_canvas(float(atlas.tiles.lon[tile]), float(atlas.tiles.lat[tile]))
    h.qtbot.mouseClick(h.window.map.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    h.qtbot.waitUntil(lambda: h.state.selection.tile is not None and h.state.selection.tile.index == tile)


def test_index_layer_colours_each_tile_by_the_engines_prediction(make_app, indices_atlas: Path,
                                                                 bundle_path: Path) -> None:
    before = folder_digest(indices_atlas)
    h = make_app()
    h.open(indices_atlas, bundle_path)
    assert h.window.layers_control.keys() == [IMAGERY, SIMILARITY, *INDEX_NAMES]
    predictor = predictor_of(indices_atlas)
    lut = h.window.map._lut
    for name in ("ACI", NAN_INDEX):
        choose(h, name)
        expected = predictor.layer(name).values.astype(np.float64)
        shown = h.window.map.heat_values
        np.testing.assert_array_equal(np.isnan(shown), np.isnan(expected))
        np.testing.assert_allclose(shown[np.isfinite(expected)], expected[np.isfinite(expected)], rtol=1e-6)
        lo, hi = float(np.nanmin(expected)), float(np.nanmax(expected))
        assert h.window.map.heat_levels == pytest.approx((lo, hi))
        colours = drawn_colours(h.window.map)
        finite = np.flatnonzero(np.isfinite(expected))
        want = lut[np.clip(((expected[finite] - lo) / (hi - lo) * 255), 0, 255).astype(int), :3]
        np.testing.assert_array_equal(colours[finite, :3], want)
        assert (colours[finite, 3] == 255).all()
        missing = np.flatnonzero(np.isnan(expected))
        assert (colours[missing] == np.array(NO_VALUE_RGBA, np.uint8)).all()  # "no value", not the colour of 0
        assert h.window.map.colour_label.startswith(name)
        key = h.window.no_value_key
        assert key.isVisible() == bool(missing.size) and key.count == missing.size
    assert np.isnan(predictor.layer(NAN_INDEX).values[0]), "the fixture makes tile 0 lack BI"
    # The shares' colour bar is fixed at 0..1, so two share maps compare by colour.
    choose(h, "biophony_share")
    assert h.window.map.heat_levels == (0.0, 1.0)
    choose(h, IMAGERY)
    assert h.window.map.heat_values is None and not h.window.map.colour_bar.isVisible()
    assert folder_digest(indices_atlas) == before


def test_clicking_a_tile_shows_its_predicted_values_and_24h_profile(make_app, indices_atlas: Path,
                                                                    bundle_path: Path) -> None:
    h = make_app()
    h.open(indices_atlas, bundle_path)
    choose(h, "NDSI")
    predictor = predictor_of(indices_atlas)
    atlas = h.state.project.atlas
    tile = int(np.argmin((atlas.tiles.lon - np.median(atlas.tiles.lon)) ** 2
                         + (atlas.tiles.lat - np.median(atlas.tiles.lat)) ** 2))
    click_tile(h, tile)
    panel = h.window.tile_panel
    assert panel.isVisible() and panel.shown.tile_id == int(atlas.tiles.ids[tile])
    splitter = h.window.listen.splitter  # above the recording lists, its height dragged like theirs
    assert splitter.indexOf(panel) == 0
    before = splitter.sizes()
    assert before[0] >= 120  # it got room when it appeared
    largest = 1 + int(np.argmax(before[1:]))
    dragged = list(before)
    dragged[0], dragged[largest] = before[0] + 30, before[largest] - 30
    splitter.setSizes(dragged)
    assert splitter.sizes()[0] > before[0] and panel.height() == splitter.sizes()[0]
    for name, (value, unc) in predictor.tile_values(tile).items():
        assert panel.shown.values[name] == pytest.approx((value, unc), nan_ok=True)
        text = panel.value_text(name)
        assert text == "no value" if math.isnan(value) else text.startswith(f"{value:.4g}")
    profile = predictor.hourly_profile(tile, "NDSI")
    assert panel.shown.profile_name == "NDSI"
    np.testing.assert_allclose(panel.profile_values, profile.values, equal_nan=True)
    x, y = panel.curve.getData()
    np.testing.assert_allclose(y, profile.values, equal_nan=True)
    # The real recordings were made at 0, 2, 4, 5, 6, 7, 8, 10, 12, 16, 20 and 22 h; spinetail has no time.
    assert set(np.flatnonzero(profile.counts)) == {0, 2, 4, 5, 6, 7, 8, 10, 12, 16, 20, 22}
    assert panel.plot.isVisible()
    # The recordings are listed beside the values (the Listen tab).
    assert h.window.tabs.currentWidget() is h.window.listen and h.window.listen.best.rowCount() > 0
    # Switching the layer makes the profile follow it.
    choose(h, "ACI")
    np.testing.assert_allclose(panel.profile_values, predictor.hourly_profile(tile, "ACI").values, equal_nan=True)


def test_atlas_without_indices_says_how_to_add_them(make_app, built_atlas: Path, bundle_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    assert h.window.layers_control.keys() == [IMAGERY, SIMILARITY]
    note = h.window.layers_control.note
    assert note.isVisible() and "has no acoustic indices" in note.text()
    assert f"soundscape-engine atlas indices --atlas {built_atlas}" in note.text()


def export(h, kind: str, path: Path) -> None:
    h.window.export_menu.export_to(kind, path)
    h.wait_idle()


def test_every_export_from_the_window_round_trips(make_app, indices_atlas: Path, bundle_path: Path,
                                                  realdata: Path, tmp_path: Path) -> None:
    import pyogrio.raw
    import rasterio
    from pyproj import Transformer

    before = folder_digest(indices_atlas)
    out = tmp_path / "exports"
    h = make_app()
    h.open(indices_atlas, bundle_path)
    predictor = predictor_of(indices_atlas)
    atlas = h.state.project.atlas
    choose(h, "ACI")
    aci = predictor.layer("ACI")

    export(h, "layer_cog", out / "aci.tif")
    with rasterio.open(out / "aci.tif") as ds:
        to_raster = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True)
        for tile in (0, len(atlas.tiles) // 2, len(atlas.tiles) - 1):
            # a point a third of the way from the tile's centre to a corner (still inside the tile)
            corner = np.asarray(atlas.tiles.footprints[tile][2])
            lon = float(atlas.tiles.lon[tile] + (corner[0] - atlas.tiles.lon[tile]) / 3)
            lat = float(atlas.tiles.lat[tile] + (corner[1] - atlas.tiles.lat[tile]) / 3)
            (value,) = next(ds.sample([to_raster.transform(lon, lat)]))
            assert value == pytest.approx(float(aci.values[tile]), rel=1e-6)
        assert ds.tags(1) or ds.descriptions[0] == "ACI"

    export(h, "layer_cog_wgs84", out / "aci-wgs84.tif")
    with rasterio.open(out / "aci-wgs84.tif") as ds:
        assert ds.crs.to_epsg() == 4326
        tile = len(atlas.tiles) // 3
        (value,) = next(ds.sample([(float(atlas.tiles.lon[tile]), float(atlas.tiles.lat[tile]))]))
        assert value == pytest.approx(float(aci.values[tile]), rel=1e-6)

    export(h, "layer_gpkg", out / "aci.gpkg")
    meta, _, geometry, fields = pyogrio.raw.read(out / "aci.gpkg")
    assert list(meta["fields"]) == ["tile", "lon", "lat", "ACI", "ACI_uncertainty"] and meta["crs"] == "EPSG:4326"
    order = np.argsort(fields[0])
    np.testing.assert_allclose(fields[3][order], aci.values[np.argsort(atlas.tiles.ids)], rtol=1e-6)
    assert len(geometry) == len(atlas.tiles)

    tile = int(len(atlas.tiles) // 2)
    click_tile(h, tile)
    best = h.state.selection.tile.best
    export(h, "tile_csv", out / "tile.csv")
    with open(out / "tile.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [m.id for m in best]
    assert float(rows[0]["score"]) == pytest.approx(best[0].score, rel=1e-6)
    export(h, "tile_raven", out / "tile.txt")
    with open(out / "tile.txt", newline="") as f:
        raven = list(csv.DictReader(f, delimiter="\t"))
    assert list(raven[0])[:7] == ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                                  "High Freq (Hz)"]
    assert [r["Begin Path"] for r in raven] == [m.path for m in best]
    durations = dict(zip(atlas.recordings.ids, atlas.recordings.durations, strict=True))
    assert float(raven[0]["End Time (s)"]) == pytest.approx(durations[best[0].id], abs=1e-3)

    export(h, "indices_csv", out / "indices.csv")
    with open(out / "indices.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(atlas.recordings)
    stored = atlas.indices.column("NDSI")
    assert float(table[3]["NDSI"]) == pytest.approx(float(stored[3]), rel=1e-6)

    h.qtbot.waitUntil(lambda: h.state.selection.clip_log_mel is not None, timeout=30000)
    export(h, "spectrogram_png", out / "spectrogram.png")
    spectrogram = QImage(str(out / "spectrogram.png"))
    assert not spectrogram.isNull() and spectrogram.width() == h.window.listen.spectrogram.width()

    export(h, "map_png", out / "map.png")
    picture = QImage(str(out / "map.png"))
    assert picture.width() == h.window.map.canvas.width() and picture.height() > h.window.map.canvas.height()

    h.window.open_audio_file(realdata / "audio" / "S4A03895_20190522_060000.wav")
    h.wait_idle()
    assert h.state.layers.current.key == SIMILARITY  # a new query shows its heat map
    export(h, "query_csv", out / "query.csv")
    with open(out / "query.csv", newline="") as f:
        matches = list(csv.DictReader(f))
    assert [int(r["tile"]) for r in matches] == [t.id for t in h.state.query.result.top]

    assert h.controller.settings.export_folder == str(out.resolve())
    from app.services.settings import load_settings

    assert load_settings(h.controller.context.config_dir).export_folder == str(out.resolve())  # saved
    assert h.controller.exports.default_path("layer_cog").parent == out.resolve()
    assert folder_digest(indices_atlas) == before


def test_export_to_an_unwritable_folder_is_one_line_and_writes_nothing(make_app, indices_atlas: Path,
                                                                       bundle_path: Path, tmp_path: Path) -> None:
    h = make_app()
    h.open(indices_atlas, bundle_path)
    choose(h, "ACI")
    out = tmp_path / "out"
    out.mkdir()
    blocker = out / "a-file"
    blocker.write_text("x")
    export(h, "layer_cog", blocker / "aci.tif")
    message = h.state.last_message
    assert message.level == "error" and "\n" not in message.text and "cannot be written" in message.text
    assert h.window.banner.isVisible()
    if os.geteuid() != 0:  # root writes into read-only folders, so only other users can check this one
        folder = out / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            export(h, "layer_gpkg", folder / "aci.gpkg")
            assert "cannot be written" in h.state.last_message.text
            assert list(folder.iterdir()) == []
        finally:
            folder.chmod(0o755)
    assert blocker.read_text() == "x" and sorted(p.name for p in out.iterdir()) in (["a-file"], ["a-file", "read-only"])
    assert h.controller.settings.export_folder is None


def test_headless_layer_option_draws_the_index_map_without_torch(tmp_path: Path, indices_atlas: Path,
                                                                 bundle_path: Path) -> None:
    from PIL import Image

    from tests.app.test_headless import run_app

    shots = {}
    for layer in ("imagery", "NDSI"):
        out = tmp_path / f"{layer}.png"
        result = run_app(["--screenshot", str(out), "--atlas", str(indices_atlas), "--bundle", str(bundle_path),
                          "--size", "1000x700", "--layer", layer], tmp_path, block_torch=True, DISPLAY=None,
                         WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
        assert result.returncode == 0, result.stderr
        shots[layer] = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)
    # The map (left half) is coloured by the layer; the imagery alone looks different there.
    left = slice(100, 600), slice(20, 450)
    assert np.abs(shots["NDSI"][left] - shots["imagery"][left]).mean() > 20  # about 67 when measured
