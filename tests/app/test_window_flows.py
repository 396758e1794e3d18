"""The main flows driven through the widgets, checked against answers computed from the atlas arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.services.geo import lonlat_to_mercator
from app.services.settings import load_settings
from engine.audio import load_audio, resample
from engine.inference.encoders import BundleEncoders
from tests.app import independent
from tests.app.audio_fakes import FakeAudioBackend, FakeInputStream


def click_lonlat(h, lon: float, lat: float) -> None:
    pos = h.window.map.lonlat_to_canvas(lon, lat)
    h.qtbot.mouseClick(h.window.map.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def interior_tile(atlas) -> int:
    """A tile in the middle of the scene (its neighbours all around), found from the arrays."""
    lon, lat = np.asarray(atlas.tiles.lon), np.asarray(atlas.tiles.lat)
    return int(np.argmin((lon - np.median(lon)) ** 2 + (lat - np.median(lat)) ** 2))


def test_clicking_a_tile_lists_its_true_best_recording_first(make_app, built_atlas: Path, bundle_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    atlas = h.state.project.atlas
    tile = interior_tile(atlas)
    # A point inside the tile but off its centre: 30 % of the way to its first corner.
    corner = np.asarray(atlas.tiles.footprints[tile][0])
    lon = float(atlas.tiles.lon[tile] + 0.3 * (corner[0] - atlas.tiles.lon[tile]))
    lat = float(atlas.tiles.lat[tile] + 0.3 * (corner[1] - atlas.tiles.lat[tile]))
    click_lonlat(h, lon, lat)
    h.qtbot.waitUntil(lambda: h.state.selection.tile is not None)
    assert h.state.selection.tile.tile_id == int(atlas.tiles.ids[tile])
    best = independent.best_recording(atlas, tile)
    assert h.window.listen.best.item(0, 1).text() == atlas.recordings.titles[best]
    # The nearest list is sorted by km; its first row is the geographically nearest recording.
    from app.services.geo import haversine_km

    km = haversine_km(float(atlas.tiles.lon[tile]), float(atlas.tiles.lat[tile]), atlas.recordings.lon,
                      atlas.recordings.lat)
    assert h.window.listen.nearest.item(0, 1).text() == atlas.recordings.titles[int(np.argmin(km))]
    assert h.window.listen.nearest.item(0, 2).text() == f"{km.min():.2f} km"
    # The map outlines that tile, and the selected clip's spectrogram arrives with the front-end's bands.
    assert h.window.map.selected == tile
    h.qtbot.waitUntil(lambda: h.state.selection.clip_log_mel is not None)
    assert h.window.listen.spectrogram.data.shape[0] == h.state.project.bundle.front_end.n_mels
    assert h.window.listen.spectrogram.seconds == pytest.approx(atlas.recordings.durations[best], abs=0.05)


def test_clicking_outside_the_atlas_selects_nothing(make_app, built_atlas: Path, bundle_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    west, south, east, north = h.state.project.atlas.bounds
    h.window.map.view.setRange(xRange=(float(lonlat_to_mercator(west - 2, 0)[0]),
                                       float(lonlat_to_mercator(east, 0)[0])),
                               yRange=(float(lonlat_to_mercator(0, south)[1]), float(lonlat_to_mercator(0, north)[1])),
                               padding=0)
    click_lonlat(h, west - 1.0, (south + north) / 2)
    h.qtbot.wait(50)
    assert h.state.selection.tile is None


def test_open_audio_file_fills_heat_map_and_gallery(make_app, built_atlas: Path, bundle_path: Path,
                                                    realdata: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    atlas = h.state.project.atlas
    clip = realdata / "audio" / "S4A03895_20190522_060000.wav"
    h.window.open_audio_file(clip)
    h.wait_idle()
    query = BundleEncoders(bundle_path).embed_audio_file(clip)
    d = independent.distances(atlas.tiles.embeddings, query, atlas.distance)
    heat = h.window.map.heat_values
    assert heat.shape == (len(atlas.tiles.ids),)
    np.testing.assert_allclose(heat, independent.scores(d, atlas.distance), rtol=1e-4, atol=1e-6)
    # One coloured cell per tile in the heat images.
    cells = sum(int((item.image[..., 3] > 0).sum()) for item in h.window.map._heat_items)
    assert cells == len(atlas.tiles.ids)
    assert h.window.search.gallery.indices == independent.top_tiles(atlas, query, len(h.window.search.gallery.indices))
    assert h.window.search.gallery.count() == 24
    assert h.window.map.colour_bar.isVisible()


def test_gallery_click_centres_the_map_on_the_tile(make_app, built_atlas: Path, bundle_path: Path,
                                                   realdata: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    h.window.open_audio_file(realdata / "audio" / "spinetail.wav")
    h.wait_idle()
    gallery = h.window.search.gallery
    third = gallery.item(2)
    rect = gallery.visualItemRect(third)
    h.qtbot.mouseClick(gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    index = gallery.indices[2]
    atlas = h.state.project.atlas
    x, y = lonlat_to_mercator(float(atlas.tiles.lon[index]), float(atlas.tiles.lat[index]))
    (x0, x1), (y0, y1) = h.window.map.view.viewRange()
    tile_w = h.window.map.tile_layout.median_tile_width()
    assert abs((x0 + x1) / 2 - float(x)) < tile_w / 4 and abs((y0 + y1) / 2 - float(y)) < tile_w / 4
    assert h.state.selection.tile.index == index


def test_record_flow_with_a_fake_input_stream(make_app, built_atlas: Path, bundle_path: Path, realdata: Path) -> None:
    h = make_app(backend=FakeAudioBackend())
    h.open(built_atlas, bundle_path)
    source, rate = load_audio(realdata / "audio" / "spinetail.wav", 44100)
    streams = []

    def open_stream(device, stream_rate, callback):
        assert stream_rate == 44100
        streams.append(FakeInputStream(source, callback, rate=stream_rate))
        return streams[-1]

    h.controller.audio.open_stream = open_stream
    panel = h.window.search
    panel.max_seconds.setValue(6)
    assert panel.record_button.isEnabled()
    h.qtbot.mouseClick(panel.record_button, Qt.MouseButton.LeftButton)
    assert h.state.audio.recording
    # The maximum length stops it; then the query runs in the background.
    h.qtbot.waitUntil(lambda: not h.state.audio.recording, timeout=20000)
    h.wait_idle()
    result = h.state.query.result
    assert result is not None and result.source == "microphone"
    assert result.seconds == pytest.approx(6.0, abs=0.01)
    # The live spectrogram was fed from the ring buffer: one frame per hop of the 6 s at 22,050 Hz.
    cfg = h.state.project.bundle.front_end
    assert abs(panel.live.frames_received - 6.0 * cfg.sample_rate / cfg.hop_length) <= 3
    assert panel.meter.peak_db > -40
    # The same clip embedded directly gives the same best tiles.
    expected = BundleEncoders(bundle_path).embed_samples(source[: 6 * 44100], 44100)
    atlas = h.state.project.atlas
    assert panel.gallery.indices == independent.top_tiles(atlas, expected, len(panel.gallery.indices))
    assert not streams[0]._thread.is_alive()


def test_stop_button_ends_recording_early(make_app, built_atlas: Path, bundle_path: Path, realdata: Path) -> None:
    h = make_app(backend=FakeAudioBackend())
    h.open(built_atlas, bundle_path)
    source, _ = load_audio(realdata / "audio" / "spinetail.wav", 44100)
    h.controller.audio.open_stream = lambda d, r, cb: FakeInputStream(source, cb, rate=r, speed=4.0)
    panel = h.window.search
    panel.max_seconds.setValue(60)
    h.qtbot.mouseClick(panel.record_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: h.controller.audio.recorder is not None and h.controller.audio.recorder.seconds > 2)
    h.qtbot.mouseClick(panel.record_button, Qt.MouseButton.LeftButton)
    assert not h.state.audio.recording
    h.wait_idle()
    assert 2.0 < h.state.query.result.seconds < 60


def test_hover_shows_tile_id_and_best_recording(make_app, built_atlas: Path, bundle_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    atlas = h.state.project.atlas
    tile = interior_tile(atlas)
    pos = h.window.map.lonlat_to_canvas(float(atlas.tiles.lon[tile]), float(atlas.tiles.lat[tile]))
    h.qtbot.mouseMove(h.window.map.canvas.viewport(), pos)
    h.qtbot.mouseMove(h.window.map.canvas.viewport(), pos + QPoint(1, 0))
    h.qtbot.waitUntil(lambda: h.window.map.last_hover_text != "")
    text = h.window.map.last_hover_text
    assert text.startswith(f"tile {int(atlas.tiles.ids[tile])} ")
    assert atlas.recordings.titles[independent.best_recording(atlas, tile)] in text
    assert "W" in h.window.map.readout.text() and "N" in h.window.map.readout.text()


def test_scale_bar_matches_the_ground_resolution(make_app, built_atlas: Path, bundle_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    h.qtbot.wait(50)
    bar = h.window.map.scale_bar
    # Independent: two screen points 100 px apart, their ground distance by the haversine formula.
    m = h.window.map
    (x0, x1), (y0, y1) = m.view.viewRange()
    centre = m.view.mapViewToScene(m.view.viewRect().center())
    from PySide6.QtCore import QPointF

    from app.services.geo import haversine_km

    lon1, lat1 = m.scene_to_lonlat(centre)
    lon2, lat2 = m.scene_to_lonlat(centre + QPointF(100, 0))
    metres_per_px = float(haversine_km(lon1, lat1, lon2, lat2)) * 1000 / 100
    assert bar.bar_px * metres_per_px == pytest.approx(bar.length_m, rel=0.02)
    assert 0 < bar.bar_px <= bar.MAX_PX


def test_settings_remember_the_atlas(make_app, built_atlas: Path, bundle_path: Path, tmp_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    settings = load_settings(tmp_path / "config")
    assert settings.last_atlas == str(built_atlas.resolve())
    assert settings.recent_atlases[0] == str(built_atlas.resolve())
    assert Path(settings.bundle) == bundle_path.resolve()


def test_launch_reopens_the_last_atlas(make_app, built_atlas: Path, bundle_path: Path) -> None:
    first = make_app()
    first.open(built_atlas, bundle_path)
    first.window.close()
    second = make_app()
    second.controller.project.launch()
    second.wait_idle()
    assert second.state.project.atlas_path == built_atlas.resolve() or \
        Path(second.state.project.atlas_path).resolve() == built_atlas.resolve()


def test_microphone_clip_resampled_path_equals_file_path(realdata: Path, bundle_path: Path, built_atlas: Path) -> None:
    """Without Qt: the app's in-memory path and its file path embed the same clip alike."""
    from app.services import search
    from app.services.project import open_project

    project = open_project(built_atlas, [bundle_path])
    path = realdata / "audio" / "S4A03895_20190522_060000.wav"
    from_file = search.query_audio_file(project, path)
    samples, rate = load_audio(path)
    from_memory = search.query_samples(project, samples, rate)
    assert [m.index for m in from_file.top[:5]] == [m.index for m in from_memory.top[:5]]
    np.testing.assert_allclose(from_file.scores, from_memory.scores, rtol=1e-3)
    assert resample  # the front-end's resampler is what both paths use


def test_the_chosen_input_device_is_remembered(make_app, tmp_path: Path) -> None:
    from tests.app.audio_fakes import FAKE_DEVICE

    second = FAKE_DEVICE.__class__(index=9, name="USB recorder", hostapi="fake", max_input_channels=2,
                                   default_samplerate=48000.0)

    class TwoDevices(FakeAudioBackend):
        def input_devices(self):
            return [FAKE_DEVICE, second]

    h = make_app(backend=TwoDevices())
    combo = h.window.search.device_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["Test microphone (fake)", "USB recorder (fake)"]
    assert combo.currentIndex() == 0  # the default input
    combo.setCurrentIndex(1)
    assert h.state.audio.input_device == second
    assert load_settings(tmp_path / "config").input_device == "USB recorder"
    h.window.close()
    again = make_app(backend=TwoDevices())
    assert again.state.audio.input_device == second
    assert again.window.search.device_combo.currentIndex() == 1


def test_pointer_beyond_the_world_edge_is_harmless(make_app, built_atlas: Path, bundle_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    assert h.controller.project.hover_text(-200.0, 95.0) is None
    assert not h.controller.project.select_at(181.0, 0.0)
    assert h.state.selection.tile is None
