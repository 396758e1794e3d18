"""The Qt-free parts behind models, atlases, the player, coordinates and audio errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.services import atlas_library, model_catalog
from app.services.audio_errors import explain_audio_error, portaudio_code
from app.services.coords import format_place
from app.services.player import ClipPlayer, playback_gain
from app.services.settings import Settings, load_settings, save_settings
from tests.app.trust_fakes import PlaybackBackend, PortAudioError


def test_places_are_lat_lon_with_hemispheres_unless_asked_otherwise() -> None:
    assert format_place(55.67612, 12.56834) == "55.6761° N, 12.5683° E"
    assert format_place(-33.8688, -151.2093, "latlon", 2) == "33.87° S, 151.21° W"
    assert format_place(24.25, -77.5, "lonlat", 1) == "77.5° W, 24.2° N"


@pytest.mark.parametrize("code, words", [(-9993, "cannot be used together"), (-9996, "no longer there"),
                                         (-9985, "busy or unavailable"), (-9997, "sample rate")])
def test_common_portaudio_codes_become_a_sentence_with_a_fix(code: int, words: str) -> None:
    err = PortAudioError("Error opening OutputStream: whatever PortAudio said", code, ("ALSA", 0))
    assert portaudio_code(err) == code
    text = explain_audio_error(err, "USB mic", "play")
    assert text.startswith("USB mic: cannot play: ") and words in text and "PaErrorCode" not in text
    # The code is also found in the text alone (an error re-raised as a plain exception).
    assert portaudio_code(RuntimeError(f"failed [PaErrorCode {code}]")) == code


def test_player_position_is_the_frames_the_stream_took_and_seek_moves_it() -> None:
    backend = PlaybackBackend()
    player = ClipPlayer(backend)
    rate = 8000
    samples = (np.arange(rate * 2, dtype=np.float32) / (rate * 2)) * 0.5  # a ramp: each frame is its index
    player.play(samples, rate, "ramp", start_s=0.25)
    stream = backend.streams[-1]
    assert player.position_seconds == 0.25
    out = stream.pump(1000)
    np.testing.assert_allclose(out, samples[2000:3000])
    assert player.position_seconds == pytest.approx(3000 / rate)
    player.seek(1.9)
    stream.pump(1000)  # 0.1 s left: 800 frames, then silence, and the stream ends
    assert player.position_seconds == pytest.approx(2.0)
    assert stream.taken[-1][800:].max() == 0.0 and not player.active
    player.seek(-3)
    assert player.position_seconds == 0.0


def test_playback_gain_and_normalisation() -> None:
    quiet = np.array([0.0, 0.1, -0.05], np.float32)
    assert playback_gain(quiet, 0.0, False) == 1.0
    assert playback_gain(quiet, 20.0, False) == pytest.approx(10.0)
    assert playback_gain(quiet, 0.0, True) * 0.1 == pytest.approx(10 ** (-1 / 20))
    assert playback_gain(np.zeros(4, np.float32), 0.0, True) == 1.0  # silence is not blown up


def test_model_list_reads_name_date_data_and_metrics_from_manifests(tmp_path: Path, bundle_path: Path) -> None:
    trained = tmp_path / "data" / "bundles" / "20261204-101010-tiny"
    shutil.copytree(bundle_path, trained)
    manifest = json.loads((trained / "manifest.json").read_text())
    manifest["trained_on"] = {"kind": "soundingearth", "pairs": {"train": 1234}, "preset": "tiny", "epochs": 3}
    (trained / "manifest.json").write_text(json.dumps(manifest))
    models = model_catalog.list_models(bundle_path, tmp_path / "data", [str(bundle_path), str(tmp_path / "nope")])
    assert [m.kind for m in models] == ["shipped", "trained"]  # no duplicate, no unreadable one
    shipped, mine = models
    original = json.loads((bundle_path / "manifest.json").read_text())
    val = original["trained_on"]["metrics"]["val"]
    assert shipped.metrics == {"i2a_r10": val["image_to_audio"]["R@10"], "a2i_r10": val["audio_to_image"]["R@10"]}
    assert shipped.date == original["exported_at"][:16].replace("T", " ")
    assert shipped.ground_m_per_px == pytest.approx(original["image"]["ground_size_m"] / original["image"]["size"])
    assert mine.trained_on == "soundingearth, 1,234 training pairs, preset tiny, 3 epochs"
    assert mine.metrics is None and mine.metrics_text() == "no validation metrics"


def test_resolution_warning_only_when_far_from_the_training_pixels() -> None:
    assert atlas_library.resolution_warning(3.0, 2.27) == ""
    coarse = atlas_library.resolution_warning(300.0, 2.27)
    assert "132x coarser" in coarse and "rough guess" in coarse
    assert "finer" in atlas_library.resolution_warning(0.1, 2.27)
    assert atlas_library.resolution_warning(300.0, None) == ""


def test_copy_for_editing_leaves_the_demo_atlas_and_names_copies_apart(tmp_path: Path) -> None:
    demo_atlas = tmp_path / "data" / "demo-atlas"
    (demo_atlas / "tiles").mkdir(parents=True)
    (demo_atlas / "atlas.json").write_text("{}")
    (demo_atlas / "tiles" / "part-0.npy").write_bytes(b"\x01\x02")
    assert atlas_library.is_demo_atlas(demo_atlas, tmp_path / "data")
    assert not atlas_library.is_demo_atlas(tmp_path / "elsewhere", tmp_path / "data")
    first = atlas_library.copy_for_editing(demo_atlas, tmp_path / "data")
    second = atlas_library.copy_for_editing(demo_atlas, tmp_path / "data")
    assert first.name == "demo-atlas-copy" and second.name == "demo-atlas-copy-2"
    assert (first / "tiles" / "part-0.npy").read_bytes() == b"\x01\x02"
    assert not any(p.name.endswith(".partial") for p in first.parent.iterdir())


def test_settings_keep_dialog_folders_models_and_coordinate_order(tmp_path: Path) -> None:
    s = Settings()
    s.remember_dialog_dir("geotiff", tmp_path / "scene.tif")
    s.remember_bundle(tmp_path / "bundle")
    s.coord_order = "lonlat"
    save_settings(s, tmp_path)
    again = load_settings(tmp_path)
    assert again.dialog_dirs == {"geotiff": str(tmp_path)}
    assert again.opened_bundles == [str((tmp_path / "bundle").resolve())]
    assert again.coord_order == "lonlat"
    (tmp_path / "settings.json").write_text(json.dumps({"dialog_dirs": {"a": 3}, "opened_bundles": [1]}))
    broken = load_settings(tmp_path)
    assert broken.dialog_dirs == {} and broken.opened_bundles == []
