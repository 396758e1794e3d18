"""What a field scientist relies on after the first five minutes, driven through the widgets: a trained
model is offered, not switched; the demo atlas never changes; a player with a playhead and seek; one
coordinate order; PortAudio errors with a fix; a training folder checked before the engine starts; the
New atlas dialog's advice for coarse imagery."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from engine.atlas import open_atlas
from tests.app import fixtures_data
from tests.app.test_window_flows import interior_tile
from tests.app.trust_fakes import PlaybackBackend, failing_input_stream


def tree_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> hex)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------- models

@pytest.fixture
def fake_training(tmp_path: Path, bundle_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The engine's train and export replaced: train writes metrics.jsonl, export copies a real bundle
    (another id, validation R@10 0.52 / 0.55 in its manifest). Returns that bundle's template."""
    import app.services.training as training
    from engine.formats.bundle import write_manifest

    template = fixtures_data.variant_bundle(bundle_path, tmp_path / "trained-template")
    manifest = json.loads((template / "manifest.json").read_text())
    manifest["trained_on"] = {"kind": "pair-table", "preset": "tiny", "epochs": 2, "pairs": {"train": 40},
                              "metrics": {"val": {"image_to_audio": {"R@10": 0.52},
                                                  "audio_to_image": {"R@10": 0.55}}}}
    for key in ("format", "format_version", "files", "bundle_id"):
        manifest.pop(key, None)
    write_manifest(template, manifest)
    train = ("import json, sys, pathlib; out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True); "
             "f = open(out / 'metrics.jsonl', 'w'); "
             "[f.write(json.dumps(r) + '\\n') for r in ({'event': 'start', 'epochs': 1, 'total_steps': 2}, "
             "{'event': 'step', 'step': 1, 'epoch': 1, 'loss': 0.9}, {'event': 'step', 'step': 2, 'epoch': 1, "
             "'loss': 0.7}, {'event': 'end', 'status': 'finished'})]")
    monkeypatch.setattr(training, "train_command", lambda spec: [sys.executable, "-c", train, str(spec.run_dir)])
    monkeypatch.setattr(training, "export_command", lambda spec: [
        sys.executable, "-c", f"import shutil; shutil.copytree({str(template)!r}, {str(spec.bundle_dir)!r})"])
    return template


def pair_table_folder(tmp_path: Path) -> Path:
    data = tmp_path / "pairs-data"
    data.mkdir()
    (data / "pairs.csv").write_text("id,longitude,latitude,image,audio\n")
    return data


def test_a_trained_model_is_offered_and_the_old_one_stays_until_accepted(
        make_app, atlas_copy: Path, bundle_path: Path, fake_training: Path, tmp_path: Path) -> None:
    h = make_app()
    h.controller.engine.find_spec = lambda name: object()  # the engine counts as installed
    h.controller.engine.refresh()
    h.open(atlas_copy, bundle_path)
    old_id = h.state.project.bundle.bundle_id
    panel, offer = h.window.train, h.window.extras.offer
    h.window.tabs.setCurrentWidget(panel)  # where the user starts training
    panel.data_edit.setText(str(pair_table_folder(tmp_path)))
    h.qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: h.state.training.phase in ("finished", "failed", "cancelled"), timeout=60_000)
    h.wait_idle()
    assert h.state.training.phase == "finished", h.state.training.message
    # Nothing switched: the model in use, the atlas on disk and the status bar are the old ones.
    assert h.state.project.bundle.bundle_id == old_id
    assert open_atlas(atlas_copy).bundle_id == old_id
    assert h.window.status.bundle_label.text() == f"model: {bundle_path.name}"
    # The offer shows the new model's metrics beside the current one's (read here from both manifests).
    assert offer.isVisible()
    current_val = json.loads((bundle_path / "manifest.json").read_text())["trained_on"]["metrics"]["val"]
    text = offer.table.text()
    assert "image→audio 0.52" in text and "audio→image 0.55" in text
    assert f"image→audio {current_val['image_to_audio']['R@10']:.2f}" in text
    new_path = h.state.training.bundle_path
    new_id = json.loads((new_path / "manifest.json").read_text())["bundle_id"]
    assert new_id != old_id
    # Accepting re-embeds the atlas (a new generation) and switches.
    generation = json.loads((atlas_copy / "atlas.json").read_text())["generation"]
    h.qtbot.mouseClick(offer.use_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: h.state.project.bundle is not None and h.state.project.bundle.bundle_id == new_id,
                      timeout=120_000)
    h.wait_idle()
    assert not offer.isVisible()
    on_disk = json.loads((atlas_copy / "atlas.json").read_text())
    assert on_disk["bundle_id"] == new_id and on_disk["generation"] == generation + 1
    # The trained model is in the model list with its metrics; one click goes back to the shipped one.
    dialog = h.window.extras.show_models()
    names = [dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())]
    assert new_path.name in names
    row = names.index(new_path.name)
    assert dialog.table.item(row, 0).text() == "●"
    assert dialog.table.item(row, 5).text() == "val R@10 image→audio 0.52, audio→image 0.55"
    assert h.window.train.phase_label.text() == f"Finished: Now using the new model {new_path.name}"
    h.qtbot.mouseClick(dialog.demo_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: h.state.project.bundle.bundle_id == old_id, timeout=120_000)
    h.wait_idle()
    # No stale label: the training message belonged to the model just left.
    assert "Now using" not in h.window.train.phase_label.text()
    assert dialog.table.item(0, 0).text() == "●" and dialog.table.item(0, 2).text() == "shipped"
    dialog.close()


def test_a_wrong_training_folder_is_refused_before_any_process_starts(
        make_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.services.training as training

    started: list[list[str]] = []
    monkeypatch.setattr(training, "_popen", lambda cmd, log_file: started.append(cmd))
    h = make_app()
    h.controller.engine.find_spec = lambda name: object()
    h.controller.engine.refresh()
    folder = tmp_path / "my-recordings"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a dataset")
    h.window.train.data_edit.setText(str(folder))
    h.qtbot.mouseClick(h.window.train.start_button, Qt.MouseButton.LeftButton)
    assert f"{folder}: holds neither metadata.csv" in h.window.banner.text
    assert h.state.training.phase == "idle" and h.window.train.start_button.text() == "Start training"
    h.wait_idle()
    assert started == []
    assert not (tmp_path / "data" / "runs").exists()


# ---------------------------------------------------------------------------------------- atlases

def test_adding_imagery_to_the_demo_atlas_changes_a_copy_never_the_demo(
        make_app, built_atlas: Path, bundle_path: Path, realdata: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    demo_atlas = tmp_path / "data" / "demo-atlas"  # where the app keeps its demo atlas
    shutil.copytree(built_atlas, demo_atlas)
    before = tree_hashes(demo_atlas)
    h = make_app(demo_bundle=bundle_path)
    h.open(demo_atlas, bundle_path)
    n = len(h.state.project.atlas.tiles.ids)
    tif = fixtures_data.shifted_geotiff(realdata / "imagery" / "RGB.byte.tif", tmp_path / "east.tif", 300_000.0)
    monkeypatch.setattr(h.window.extras, "ask_add_or_new", lambda path: "add")  # the user's answer
    h.window.extras.open_geotiff(tif)
    h.wait_idle()
    h.qtbot.waitUntil(lambda: len(h.state.project.atlas.tiles.ids) > n, timeout=60_000)
    assert tree_hashes(demo_atlas) == before
    opened = Path(h.state.project.atlas_path)
    assert opened.parent == tmp_path / "data" / "atlases" and opened != demo_atlas
    copy = open_atlas(opened)
    assert len(copy.sources) == 2 and Path(copy.sources[1].path) == tif
    assert h.window.map.tile_layout.count == len(copy.tiles.ids)
    # Adding more to the copy changes the copy (no second copy is made).
    again = fixtures_data.shifted_geotiff(realdata / "imagery" / "RGB.byte.tif", tmp_path / "far.tif", 600_000.0)
    h.window.extras.open_geotiff(again)
    h.wait_idle()
    h.qtbot.waitUntil(lambda: len(open_atlas(opened).sources) == 3, timeout=60_000)
    assert sorted(p.name for p in opened.parent.iterdir()) == [opened.name]
    assert tree_hashes(demo_atlas) == before


def test_new_atlas_dialog_prefills_a_tile_size_the_coarse_image_allows(
        make_app, bundle_path: Path, realdata: Path, tmp_path: Path) -> None:
    import rasterio
    from pyproj import Geod

    tif = realdata / "imagery" / "RGB.byte.tif"
    # Independent: the ground size of one pixel at the image centre, by the WGS84 geodesic.
    with rasterio.open(tif) as ds:
        from rasterio.warp import transform as warp

        cx, cy = ds.width // 2, ds.height // 2
        xs, ys = zip(*(ds.transform @ (cx + dx, cy + dy) for dx, dy in ((0, 0), (1, 0), (0, 1))), strict=True)
        lon, lat = warp(ds.crs, "EPSG:4326", list(xs), list(ys))
    geod = Geod(ellps="WGS84")
    pixel_m = max(geod.inv(lon[0], lat[0], lon[1], lat[1])[2], geod.inv(lon[0], lat[0], lon[2], lat[2])[2])
    h = make_app()
    dialog = h.window.extras.new_atlas([tif])
    smallest = 8 * pixel_m
    assert dialog.tile_spin.value() >= smallest * 0.995
    assert dialog.tile_spin.value() == pytest.approx(math.ceil(smallest), rel=0.005)
    assert "smallest this image allows" in dialog.note.text()
    manifest = json.loads((bundle_path / "manifest.json").read_text())["image"]
    trained_m = manifest["ground_size_m"] / manifest["size"]
    assert f"trained on {trained_m:.3g} m pixels" in dialog.warning.text()
    assert "rough guess" in dialog.warning.text()
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert ok.isEnabled()
    # Too small again is refused in the dialog (the Build button greys out), not by the engine.
    dialog.tile_spin.setValue(1000)
    assert not ok.isEnabled() and "too small" in dialog.grid_label.text()
    # Bigger tiles build a new atlas in the user's atlases folder and open it.
    dialog.tile_spin.setValue(fixtures_data.TILE_SIZE_M)
    dialog.name_edit.setText("landsat")
    cols, rows = ds_cols_rows = (dialog.plans[0].width // round(fixtures_data.TILE_SIZE_M / dialog.plans[0].pixel_m),
                                 dialog.plans[0].height // round(fixtures_data.TILE_SIZE_M / dialog.plans[0].pixel_m))
    assert dialog.grid_label.text().startswith(f"RGB.byte.tif: {cols} x {rows} ")
    h.qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    h.wait_idle(120)
    h.qtbot.waitUntil(lambda: h.state.project.atlas_path is not None, timeout=60_000)
    assert Path(h.state.project.atlas_path) == tmp_path / "data" / "atlases" / "landsat"
    atlas = h.state.project.atlas
    assert 0 < len(atlas.tiles.ids) <= cols * rows and ds_cols_rows
    assert atlas.manifest["tiling"]["tile_size_m"] == fixtures_data.TILE_SIZE_M


# ----------------------------------------------------------------------------------------- player

def spectrogram_pos(view, seconds: float):
    """Widget coordinates of (``seconds``, middle row) on a spectrogram view's plot."""
    vb = view.plot.getViewBox()
    (_, _), (y0, y1) = vb.viewRange()
    scene = vb.mapViewToScene(QPointF(seconds, (y0 + y1) / 2))
    return view.plot.mapFromScene(scene)


def test_playhead_follows_the_frames_played_and_a_click_seeks(make_app, built_atlas: Path, bundle_path: Path) -> None:
    from engine.audio import load_audio

    backend = PlaybackBackend()
    h = make_app(backend=backend)
    h.open(built_atlas, bundle_path)
    h.controller.project.select_tile(interior_tile(h.state.project.atlas))
    h.qtbot.waitUntil(lambda: h.state.selection.clip_log_mel is not None, timeout=30_000)
    clip = h.state.selection.clip
    samples, rate = load_audio(clip.path)  # independent: the file at its own rate
    bar, view = h.window.extras.listen_bar, h.window.listen.spectrogram
    h.qtbot.mouseClick(bar.play_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: bool(backend.streams) and backend.streams[-1].started, timeout=30_000)
    stream = backend.streams[-1]
    assert stream.samplerate == rate
    block = 4096
    for _ in range(5):
        stream.pump(block)
    h.qtbot.waitUntil(lambda: view.playhead_seconds is not None
                      and abs(view.playhead_seconds - 5 * block / rate) < 1e-9, timeout=5000)
    np.testing.assert_allclose(np.concatenate(stream.taken), samples[:5 * block], atol=1e-6)
    assert bar.play_button.text() == "■ Stop"
    # A click on the spectrogram at 1.5 s moves the playhead there: the next block plays from there.
    seconds = min(1.5, view.seconds / 2)
    h.qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=spectrogram_pos(view, seconds))
    pixel_s = (view.view_range()[0][1] - view.view_range()[0][0]) / view.plot.getViewBox().width()
    assert h.controller.audio.player.position_seconds == pytest.approx(seconds, abs=2 * pixel_s)
    start = int(round(h.controller.audio.player.position_seconds * rate))
    np.testing.assert_allclose(stream.pump(block), samples[start:start + block], atol=1e-6)
    h.qtbot.waitUntil(lambda: abs(view.playhead_seconds - (start + block) / rate) < 1e-9, timeout=5000)
    # Gain: +6 dB plays the same samples twice as loud (10^(6/20)).
    bar.gain_spin.setValue(6)
    out = stream.pump(block)
    expected = np.clip(samples[start + block:start + 2 * block] * 10 ** (6 / 20), -1, 1)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    h.qtbot.mouseClick(bar.play_button, Qt.MouseButton.LeftButton)
    assert h.state.audio.playing is None and view.playhead_seconds is not None


def test_spectrogram_zooms_with_the_wheel_and_the_db_range_is_the_users(make_app, built_atlas: Path,
                                                                       bundle_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    h.controller.project.select_tile(interior_tile(h.state.project.atlas))
    h.qtbot.waitUntil(lambda: h.state.selection.clip_log_mel is not None, timeout=30_000)
    view = h.window.listen.spectrogram
    (t0, t1), _ = view.view_range()
    assert (t0, t1) == pytest.approx((0.0, view.seconds), abs=1e-6)
    view.plot.getViewBox().scaleBy((0.5, 0.5))  # what a wheel step does
    (z0, z1), (r0, r1) = view.view_range()
    assert z1 - z0 == pytest.approx(view.seconds / 2, rel=1e-3) and r1 - r0 < view.data.shape[0]
    view.reset_view()
    assert view.view_range()[0] == pytest.approx((0.0, view.seconds), abs=1e-6)
    view.floor_spin.setValue(-60)
    view.ceiling_spin.setValue(20)
    assert tuple(view.image.levels) == (-60.0, 20.0)
    assert tuple(view.colour_bar.levels()) == (-60.0, 20.0)


# --------------------------------------------------------------------------- coordinates, errors

def test_places_read_lat_lon_everywhere_and_the_order_is_a_setting(make_app, built_atlas: Path, bundle_path: Path,
                                                                    realdata: Path, tmp_path: Path) -> None:
    from app.services.settings import load_settings

    h = make_app()
    h.open(built_atlas, bundle_path)
    h.window.open_audio_file(realdata / "audio" / "spinetail.wav")
    h.wait_idle()
    top = h.state.query.result.top[0]
    lat, lon = float(top.lat), float(top.lon)
    # The scene is in the Bahamas (north, west): written by hand from the tile's numbers.
    lat_first = f"{abs(lat):.3f}° N, {abs(lon):.3f}° W"
    assert h.window.search.gallery.item(0).text().endswith(lat_first.replace(", ", "\n"))
    assert f"{abs(lat):.4f}° N, {abs(lon):.4f}° W" in h.state.last_message.text
    tile = interior_tile(h.state.project.atlas)
    h.controller.project.select_tile(tile)
    t_lat, t_lon = float(h.state.project.atlas.tiles.lat[tile]), float(h.state.project.atlas.tiles.lon[tile])
    assert f"{abs(t_lat):.5f}° N, {abs(t_lon):.5f}° W" in h.window.listen.header.text()
    h.window.extras.coord_actions["lonlat"].trigger()
    assert h.window.search.gallery.item(0).text().endswith(f"{abs(lon):.3f}° W\n{abs(lat):.3f}° N")
    assert f"{abs(t_lon):.5f}° W, {abs(t_lat):.5f}° N" in h.window.listen.header.text()
    assert h.window.map.coord_order == "lonlat"
    assert load_settings(tmp_path / "config").coord_order == "lonlat"


def test_a_portaudio_error_is_a_sentence_with_a_fix(make_app) -> None:
    h = make_app(backend=PlaybackBackend())
    h.controller.audio.open_stream = failing_input_stream(-9993, "Illegal combination of I/O devices")
    h.qtbot.mouseClick(h.window.search.record_button, Qt.MouseButton.LeftButton)
    text = h.window.banner.text
    assert text.startswith("Test microphone: cannot record: this input and output cannot be used together")
    assert "same host API" in text and "PaErrorCode" not in text
    assert not h.state.audio.recording
    # An unknown code keeps PortAudio's words and still says what to do.
    h.controller.audio.open_stream = failing_input_stream(-9000, "Something odd")
    h.qtbot.mouseClick(h.window.search.record_button, Qt.MouseButton.LeftButton)
    assert h.window.banner.text == ("Test microphone: cannot record: Error opening InputStream: Something odd; "
                                    "choose another device or press Audio > Refresh devices")


def test_menus_show_the_keys_and_help_shows_the_readme_and_version(make_app) -> None:
    from importlib import metadata

    from app.widgets.help_dialogs import about_text

    h = make_app()
    extras = h.window.extras
    assert extras.record_action.shortcuts()[0].toString() == "Space"
    assert [s.toString() for s in extras.record_action.shortcuts()] == ["Space", "R"]
    assert extras.play_action.shortcut().toString() == "P"
    view = extras._menu("View")
    keys = {a.text(): a.shortcut().toString() for a in view.actions()}
    assert keys["Zoom in"] == "+" and keys["Zoom out"] == "-" and keys["Pan left"] == "Left"
    dialog = extras.show_documentation()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    first_heading = next(line.lstrip("# ").strip() for line in readme.splitlines() if line.startswith("# "))
    assert dialog.browser.toPlainText().startswith(first_heading)
    dialog.close()
    assert metadata.version("soundscape-mapper") in about_text()


def test_empty_plots_are_sane_and_labels_hold_at_1024x700(make_app, built_atlas: Path, bundle_path: Path,
                                                         realdata: Path) -> None:
    from PySide6.QtGui import QFontMetrics

    h = make_app()
    h.window.resize(1024, 700)
    empty = h.window.listen.spectrogram
    (t0, t1), _ = empty.view_range()
    assert t0 == 0.0 and t1 > 0  # no negative times
    assert empty.shown_ticks == []  # and no made-up frequencies before a model is known
    h.open(built_atlas, bundle_path)
    h.window.open_audio_file(realdata / "audio" / "spinetail.wav")
    h.wait_idle()
    h.window.tabs.setCurrentWidget(h.window.search)
    h.qtbot.wait(50)
    for view in (h.window.search.query_view, h.window.search.live, h.window.listen.spectrogram):
        vb = view.plot.getViewBox()
        _, (y0, y1) = vb.viewRange()
        px_per_row = vb.height() / (y1 - y0)
        label_px = QFontMetrics(view.font()).height()
        rows = [row for row, _ in view.shown_ticks]
        assert rows, "at least one frequency label"
        assert all((b - a) * px_per_row >= label_px for a, b in zip(rows, rows[1:], strict=False))
    live = h.window.search.live
    live.append_frames(np.full((live.data.shape[0], 50), -20.0, np.float32))
    assert live.view_range()[0][0] >= 0.0


def test_the_microphone_query_clip_plays_back(make_app, built_atlas: Path, bundle_path: Path, realdata: Path) -> None:
    from engine.audio import load_audio
    from tests.app.audio_fakes import FakeInputStream

    backend = PlaybackBackend()
    h = make_app(backend=backend)
    h.open(built_atlas, bundle_path)
    source, rate = load_audio(realdata / "audio" / "spinetail.wav", 44100)
    h.controller.audio.open_stream = lambda d, r, cb: FakeInputStream(source, cb, rate=r, speed=8.0)
    h.window.search.max_seconds.setValue(3)
    h.qtbot.mouseClick(h.window.search.record_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: not h.state.audio.recording, timeout=20_000)
    h.wait_idle()
    assert h.state.query.result.source == "microphone"
    h.qtbot.mouseClick(h.window.extras.query_bar.play_button, Qt.MouseButton.LeftButton)
    assert h.state.audio.playing == "microphone"
    stream = backend.streams[-1]
    assert stream.samplerate == 44100
    np.testing.assert_allclose(stream.pump(2048), source[:2048], atol=1e-6)
    h.qtbot.waitUntil(lambda: h.window.search.query_view.playhead_seconds == pytest.approx(2048 / 44100),
                      timeout=5000)
    h.window.extras.play_action.trigger()  # P stops it
    assert h.state.audio.playing is None


def test_open_geotiff_asks_and_new_atlas_opens_the_dialog_with_the_image(make_app, built_atlas: Path,
                                                                         bundle_path: Path, realdata: Path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    h = make_app()
    h.open(built_atlas, bundle_path)
    seen: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen.append(box.text())
        new = next(b for b in box.buttons() if b.text() == "New atlas…")
        new.click()

    QTimer.singleShot(0, answer)
    tif = realdata / "imagery" / "RGB.byte.tif"
    h.window.extras.open_geotiff(tif)
    assert seen and seen[0].startswith(f"Add {tif.name} to the open atlas {built_atlas.name}")
    dialog = h.window.extras.new_atlas_dialog
    assert dialog is not None and [p.path for p in dialog.plans] == [tif]
    assert len(open_atlas(built_atlas).sources) == 1  # nothing was added to the open atlas
    assert h.controller.settings.dialog_dirs["geotiff"] == str(tif.parent)
    dialog.reject()


def test_refresh_devices_restarts_portaudio_and_lists_a_new_microphone(make_app) -> None:
    from tests.app.audio_fakes import FAKE_DEVICE

    usb = FAKE_DEVICE.__class__(index=3, name="USB recorder", hostapi="fake", max_input_channels=1,
                                default_samplerate=48000.0)

    class FakeSounddevice:
        """What PortAudio knows: the device list is read again only when it restarts."""

        def __init__(self) -> None:
            self.plugged = [FAKE_DEVICE]
            self.listed = list(self.plugged)
            self.restarts = 0

        def _terminate(self) -> None:
            self.listed = []

        def _initialize(self) -> None:
            self.listed = list(self.plugged)
            self.restarts += 1

    class Backend(PlaybackBackend):
        def __init__(self) -> None:
            super().__init__()
            self.sd = FakeSounddevice()

        def input_devices(self):
            return list(self.sd.listed)

    backend = Backend()
    h = make_app(backend=backend)
    combo = h.window.search.device_combo
    assert combo.count() == 1
    backend.sd.plugged.append(usb)  # plugged in while the app runs: not listed yet
    h.controller.audio.refresh_devices()
    assert combo.count() == 1
    h.window.extras.refresh_action.trigger()
    assert backend.sd.restarts == 1
    assert [combo.itemText(i) for i in range(combo.count())] == ["Test microphone (fake)", "USB recorder (fake)"]
    assert h.state.last_message.text == "Audio devices refreshed: 2 inputs"


def test_switching_atlas_clears_the_hover_readout(make_app, built_atlas: Path, atlas_copy: Path,
                                                  bundle_path: Path) -> None:
    from PySide6.QtCore import QPoint

    h = make_app()
    h.open(built_atlas, bundle_path)
    atlas = h.state.project.atlas
    tile = interior_tile(atlas)
    pos = h.window.map.lonlat_to_canvas(float(atlas.tiles.lon[tile]), float(atlas.tiles.lat[tile]))
    h.qtbot.mouseMove(h.window.map.canvas.viewport(), pos)
    h.qtbot.mouseMove(h.window.map.canvas.viewport(), pos + QPoint(1, 0))
    h.qtbot.waitUntil(lambda: h.window.map.last_hover_text != "")
    lat, lon = float(atlas.tiles.lat[tile]), float(atlas.tiles.lon[tile])
    assert f"tile {int(atlas.tiles.ids[tile])}  ·  {lat:.5f}° N, {abs(lon):.5f}° W" in h.window.map.readout.text()
    h.open(atlas_copy, bundle_path)
    assert h.window.map.readout.text().strip() == "" and h.window.map.last_hover_text == ""
