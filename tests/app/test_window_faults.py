"""Bad input and missing hardware: a clear message in the window, the app keeps running, nothing lost."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from app.services.audio_io import AudioBackend
from engine.atlas import open_atlas
from tests.app import fixtures_data, independent
from tests.conftest import ROOT
from tests.reaping import run_reaped

NO_PORTAUDIO = "PortAudio is not installed (cannot load library 'libportaudio.so.2'); install it"


def test_no_audio_device_disables_record_and_play_with_the_reason(make_app, built_atlas: Path,
                                                                   bundle_path: Path) -> None:
    h = make_app(backend=AudioBackend(None, NO_PORTAUDIO))
    h.open(built_atlas, bundle_path)
    panel = h.window.search
    assert not panel.record_button.isEnabled()
    assert NO_PORTAUDIO in panel.record_button.toolTip()
    assert h.window.status.audio_label.text() == "audio: unavailable"
    assert NO_PORTAUDIO in h.window.status.audio_label.toolTip()
    # The rest works: select a tile; its rows cannot play and say why.
    atlas = h.state.project.atlas
    tile = int(np.argmin(np.abs(np.asarray(atlas.tiles.lon) - np.median(atlas.tiles.lon))
                         + np.abs(np.asarray(atlas.tiles.lat) - np.median(atlas.tiles.lat))))
    assert h.controller.project.select_at(float(atlas.tiles.lon[tile]), float(atlas.tiles.lat[tile]))
    buttons = h.window.listen.best.buttons
    assert buttons and not any(b.isEnabled() for b in buttons)
    assert NO_PORTAUDIO in buttons[0].toolTip()
    # Asking to record anyway (e.g. --record-seconds) gives the reason, not a crash.
    h.window.start_recording()
    assert not h.state.audio.recording
    assert NO_PORTAUDIO in h.window.banner.text


def test_missing_portaudio_library_gives_a_reason_and_the_window_still_renders(tmp_path: Path,
                                                                                built_atlas: Path) -> None:
    """sounddevice raises OSError at import without libportaudio; the real import is made to do that."""
    block = textwrap.dedent("""
        import importlib.abc, sys
        class _NoPortAudio(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == 'sounddevice':
                    raise OSError('PortAudio library not found')
        sys.meta_path.insert(0, _NoPortAudio())
        from app.services.audio_io import AudioBackend
        backend = AudioBackend.load()
        print('REASON', backend.input_reason())
        from app.main import main
        sys.exit(main(sys.argv[1:]))
    """)
    out = tmp_path / "shot.png"
    env = _env(tmp_path)
    result = run_reaped([sys.executable, "-c", block, "--screenshot", str(out), "--atlas", str(built_atlas),
                         "--size", "800x600", "--tab", "search"], 120, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert "REASON PortAudio is not installed (PortAudio library not found)" in result.stdout
    from PIL import Image

    assert Image.open(out).size == (800, 600)


def _env(tmp_path: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"),
               QT_QPA_PLATFORM="offscreen")
    return env


def test_corrupt_atlas_manifest_is_reported_and_the_open_atlas_stays(make_app, built_atlas: Path,
                                                                     bundle_path: Path, tmp_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    bad = tmp_path / "bad-atlas"
    shutil.copytree(built_atlas, bad)
    (bad / "atlas.json").write_text("{ this is not json", encoding="utf-8")
    h.controller.project.open_atlas(bad)
    h.wait_idle()
    assert h.window.banner.isVisible()
    assert str(bad / "atlas.json") in h.window.banner.text and "unreadable" in h.window.banner.text
    assert Path(h.state.project.atlas_path) == built_atlas.resolve()
    assert h.window.map.tile_layout.count == len(h.state.project.atlas.tiles.ids)


def test_truncated_atlas_arrays_are_reported(make_app, atlas_copy: Path, bundle_path: Path) -> None:
    h = make_app()
    embedding = next((atlas_copy / "tiles").glob("embedding.*.f4"))
    embedding.write_bytes(embedding.read_bytes()[:1000])
    h.controller.project.open_atlas(atlas_copy, bundle_path)
    h.wait_idle()
    assert h.state.project.atlas is None
    assert embedding.name in h.window.banner.text and "holds 1000 bytes" in h.window.banner.text


def test_missing_atlas_is_reported_and_forgotten(make_app, built_atlas: Path, bundle_path: Path,
                                                 tmp_path: Path) -> None:
    h = make_app()
    gone = tmp_path / "gone"
    shutil.copytree(built_atlas, gone)
    h.open(gone, bundle_path)
    assert h.controller.settings.recent_atlases[0] == str(gone.resolve())
    shutil.rmtree(gone)
    h.controller.project.open_atlas(gone)
    h.wait_idle()
    assert "atlas not found" in h.window.banner.text
    assert str(gone.resolve()) not in h.controller.settings.recent_atlases


def test_atlas_of_another_bundle_is_refused(make_app, tmp_path: Path, other_bundle_path: Path,
                                            bundle_path: Path, realdata: Path) -> None:
    moved = tmp_path / "moved-bundle"
    shutil.copytree(other_bundle_path, moved)
    other_atlas = fixtures_data.build_test_atlas(tmp_path / "other-atlas", moved, realdata, tile_size_m=30000.0)
    shutil.rmtree(moved)  # the bundle the atlas names is gone, and the app knows no other with its id
    h = make_app(extra_bundles=[bundle_path])
    h.controller.project.open_atlas(other_atlas)
    h.wait_idle()
    assert h.state.project.atlas is None
    wanted = json.loads((other_atlas / "atlas.json").read_text())["bundle_id"][:12]
    assert f"built with model bundle {wanted}" in h.window.banner.text
    # Named explicitly, the right bundle opens it.
    h.open(other_atlas, other_bundle_path)
    assert h.state.project.bundle.bundle_id.startswith(wanted)


def test_damaged_bundle_is_reported_and_the_model_stays(make_app, built_atlas: Path, bundle_path: Path,
                                                        tmp_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    broken = tmp_path / "broken-bundle"
    shutil.copytree(bundle_path, broken)
    model = broken / "audio_encoder.onnx"
    model.write_bytes(model.read_bytes()[:-100])
    h.controller.project.open_bundle(broken)
    h.wait_idle()
    assert "audio_encoder.onnx" in h.window.banner.text and "sha256 differs" in h.window.banner.text
    assert h.state.project.bundle_path == bundle_path


def test_unreadable_audio_file_is_reported_and_the_last_result_kept(make_app, built_atlas: Path,
                                                                    bundle_path: Path, realdata: Path,
                                                                    tmp_path: Path) -> None:
    h = make_app()
    h.open(built_atlas, bundle_path)
    h.window.open_audio_file(realdata / "audio" / "spinetail.wav")
    h.wait_idle()
    before = h.state.query.result
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    h.window.open_audio_file(bad)
    h.wait_idle()
    assert f"{bad}: not a readable audio file" in h.window.banner.text
    assert h.state.query.result is before


def test_unreadable_geotiff_is_reported_and_the_atlas_unchanged(make_app, atlas_copy: Path, bundle_path: Path,
                                                                tmp_path: Path) -> None:
    h = make_app()
    h.open(atlas_copy, bundle_path)
    n = len(h.state.project.atlas.tiles.ids)
    bad = tmp_path / "scan.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 64)
    h.controller.project.add_geotiff(bad)
    h.wait_idle()
    assert "scan.tif" in h.window.banner.text
    assert len(open_atlas(atlas_copy).tiles.ids) == n
    assert len(h.state.project.atlas.tiles.ids) == n


def test_open_geotiff_tiles_join_the_map_and_the_atlas(make_app, atlas_copy: Path, bundle_path: Path,
                                                        realdata: Path, tmp_path: Path) -> None:
    h = make_app()
    h.open(atlas_copy, bundle_path)
    before = open_atlas(atlas_copy)
    n = len(before.tiles.ids)
    east = float(np.max(before.tiles.lon))
    tif = fixtures_data.shifted_geotiff(realdata / "imagery" / "RGB.byte.tif", tmp_path / "east.tif", 300_000.0)
    progress = []
    h.state.tasks.changed.connect(lambda: progress.extend(t.done for t in h.state.tasks.tasks.values()
                                                           if t.name.startswith("Adding")))
    h.controller.project.add_geotiff(tif)
    h.wait_idle()
    h.qtbot.waitUntil(lambda: len(h.state.project.atlas.tiles.ids) > n)
    after = open_atlas(atlas_copy)
    added = len(after.tiles.ids) - n
    assert added > 0 and len(after.sources) == 2
    assert np.all(np.asarray(after.tiles.lon[n:]) > east)  # the new place is east of the scene
    assert h.window.map.tile_layout.count == n + added
    h.window.map.show_all()
    h.qtbot.waitUntil(lambda: h.window.map.overviews_shown() == [-1, 0, 1])  # the mosaic and both overviews
    assert max(progress, default=0) > 0


def test_cancelling_an_imagery_import_keeps_what_was_embedded(make_app, atlas_copy: Path, bundle_path: Path,
                                                              realdata: Path, tmp_path: Path) -> None:
    h = make_app()
    h.open(atlas_copy, bundle_path)
    n = len(h.state.project.atlas.tiles.ids)
    tif = fixtures_data.shifted_geotiff(realdata / "imagery" / "RGB.byte.tif", tmp_path / "big.tif", 400_000.0,
                                        crop=700)
    status = h.window.status

    def cancel_on_first_progress() -> None:
        adding = [t for t in h.state.tasks.tasks.values() if t.name.startswith("Adding")]
        if adding and adding[0].done > 0 and status.cancel_button.isVisible():
            h.qtbot.mouseClick(status.cancel_button, Qt.MouseButton.LeftButton)

    messages: list[str] = []
    h.state.message.connect(lambda m: messages.append(m.text))
    h.state.tasks.changed.connect(cancel_on_first_progress)
    h.controller.project.add_geotiff(tif)
    h.wait_idle()
    h.state.tasks.changed.disconnect(cancel_on_first_progress)
    h.wait_idle()
    assert any("Stopped adding big.tif; the tiles already embedded are kept" in m for m in messages)
    on_disk = open_atlas(atlas_copy)
    full = (700 * 300 // fixtures_data.TILE_SIZE_M) ** 2  # tiles of the whole crop (300 m pixels)
    assert n <= len(on_disk.tiles.ids) < n + full
    assert len(h.state.project.atlas.tiles.ids) == len(on_disk.tiles.ids)
    # Running the import again finishes it (resumable).
    h.controller.project.add_geotiff(tif)
    h.wait_idle()
    h.qtbot.waitUntil(lambda: h.state.project.atlas.sources[-1].status == "complete")


def test_query_needs_no_crash_without_an_atlas(make_app, realdata: Path) -> None:
    h = make_app()
    h.window.open_audio_file(realdata / "audio" / "spinetail.wav")
    assert "No atlas is open" in h.window.banner.text
    assert independent  # the module is shared with the flow tests


def test_training_needs_an_existing_data_folder(make_app, tmp_path: Path) -> None:
    h = make_app()
    panel = h.window.train
    panel.data_edit.setText(str(tmp_path / "no-such-folder"))
    h.qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert f"{tmp_path / 'no-such-folder'}: data folder not found" in h.window.banner.text
    assert h.state.training.phase == "idle" and panel.start_button.text() == "Start training"
