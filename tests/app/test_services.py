"""The app's services without Qt: geo, settings, ring buffer, audio helpers, spectrogram bands, map
layout, the metrics tail; each against an independent computation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from app.services import geo
from app.services.audio_io import AudioBackend, AudioDevice, Recorder, level_dbfs, trim_silent_edges
from app.services.map_layout import layout_tiles
from app.services.ring_buffer import RingBuffer
from app.services.settings import Settings, load_settings, save_settings
from app.services.spectrogram import mel_band_centres_hz, mel_band_edges_hz
from app.services.training import MetricsTail, available_presets
from app.widgets.spectrogram_view import frequency_ticks
from engine.audio import FrontEndConfig

CFG = FrontEndConfig()


def test_mercator_matches_rasterio_and_round_trips() -> None:
    from rasterio.warp import transform

    lon = np.array([-179.9, -77.76, 0.0, 12.4924, 151.2])
    lat = np.array([-60.0, 24.56, 0.0, 41.8902, -33.86])
    x, y = geo.lonlat_to_mercator(lon, lat)
    rx, ry = transform("EPSG:4326", "EPSG:3857", lon.tolist(), lat.tolist())
    np.testing.assert_allclose(x, rx, atol=1e-6)
    np.testing.assert_allclose(y, ry, atol=1e-6)
    back_lon, back_lat = geo.mercator_to_lonlat(x, y)
    np.testing.assert_allclose(back_lon, lon, atol=1e-10)
    np.testing.assert_allclose(back_lat, lat, atol=1e-10)


def test_haversine_and_scale_helpers() -> None:
    # One degree of latitude on the mean sphere: pi * R / 180.
    assert float(geo.haversine_km(10.0, 0.0, 10.0, 1.0)) == pytest.approx(math.pi * 6371.0 / 180)
    assert geo.ground_metres_per_mercator_metre(60.0) == pytest.approx(0.5)
    assert [geo.nice_length(v) for v in (0.9, 7.3, 19.99, 20.0, 480.0, 12_345.0)] == [0.5, 5.0, 10.0, 20.0, 200.0, 10_000.0]
    assert geo.format_length(200.0) == "200 m" and geo.format_length(2500.0) == "2.5 km"
    assert geo.format_lonlat(-77.5, 24.25) == "77.50000° W, 24.25000° N"
    with pytest.raises(ValueError):
        geo.nice_length(0.0)


def test_settings_round_trip_recent_list_and_damaged_file(tmp_path: Path) -> None:
    s = Settings()
    for i in range(12):
        s.remember_atlas(tmp_path / f"a{i}", tmp_path / "bundle")
    s.remember_atlas(tmp_path / "a5", None)
    save_settings(s, tmp_path)
    loaded = load_settings(tmp_path)
    assert loaded.recent_atlases[0] == str((tmp_path / "a5").resolve())
    assert len(loaded.recent_atlases) == 10 and len(set(loaded.recent_atlases)) == 10
    assert loaded.bundle == str((tmp_path / "bundle").resolve())
    loaded.forget_atlas(tmp_path / "a5")
    assert loaded.last_atlas is None and str((tmp_path / "a5").resolve()) not in loaded.recent_atlases
    (tmp_path / "settings.json").write_text('{"record_max_seconds": "loud", "train_epochs": 7, "recent_atlases": [1]}')
    odd = load_settings(tmp_path)
    assert odd.record_max_seconds == 10.0 and odd.train_epochs == 7 and odd.recent_atlases == []
    (tmp_path / "settings.json").write_text("{broken")
    assert load_settings(tmp_path) == Settings()


def test_ring_buffer_wraps_and_readers_keep_their_place() -> None:
    ring = RingBuffer(10)
    data = np.arange(27, dtype=np.float32)
    got, pos = [], 0
    for start in range(0, 27, 4):
        ring.write(data[start:start + 4])
        block, pos = ring.read_since(pos)
        got.append(block)
    assert np.array_equal(np.concatenate(got), data)
    np.testing.assert_array_equal(ring.latest(3), [24, 25, 26])
    np.testing.assert_array_equal(ring.read_since(0)[0], data[-10:])  # a late reader gets the newest 10
    ring.write(np.arange(100, 125, dtype=np.float32))  # longer than the ring
    np.testing.assert_array_equal(ring.latest(10), np.arange(115, 125))
    assert ring.written == 52


def test_recorder_callback_keeps_the_first_max_seconds() -> None:
    device = AudioDevice(0, "mic", "", 2, 8000.0)
    rec = Recorder(lambda d, r, cb: None, device, rate=1000, max_seconds=1.5)
    stereo = np.stack([np.arange(2000), -np.arange(2000) + 2], axis=1).astype(np.float32)  # mean is 1
    for start in range(0, 2000, 256):
        rec.callback(stereo[start:start + 256], 256, None, 0)
    assert rec.full and rec.seconds == 1.5
    np.testing.assert_array_equal(rec.ring.read_since(0)[0], np.ones(1500, np.float32))


def test_trim_silent_edges_and_level() -> None:
    rate = 1000
    tone = 0.1 * np.sin(2 * np.pi * 50 * np.arange(2000) / rate).astype(np.float32)
    clip = np.concatenate([np.zeros(300, np.float32), tone, np.zeros(500, np.float32)])
    trimmed = trim_silent_edges(clip, rate)
    assert 2000 <= trimmed.size <= 2000 + 2 * 20 and np.abs(trimmed).max() == np.abs(tone).max()
    quiet_room = clip + np.float32(1e-3) * np.random.default_rng(0).standard_normal(clip.size).astype(np.float32)
    assert trim_silent_edges(quiet_room, rate).size == quiet_room.size  # a real noise floor is kept whole
    assert trim_silent_edges(np.zeros(100, np.float32), rate).size == 100
    # RMS of a sine of amplitude A is A / sqrt(2).
    assert level_dbfs(tone) == pytest.approx(20 * math.log10(0.1 / math.sqrt(2)), abs=0.01)
    assert level_dbfs(np.zeros(10, np.float32)) == -120.0


def test_backend_without_sounddevice_says_why() -> None:
    def missing(name: str):
        raise OSError("cannot load library 'libportaudio.so.2'")

    backend = AudioBackend.load(importer=missing)
    assert not backend.loaded and backend.input_devices() == [] and backend.default_input() is None
    assert backend.input_reason().startswith("PortAudio is not installed (cannot load library")
    assert backend.output_reason() == backend.input_reason()


def test_mel_bands_agree_with_librosa() -> None:
    import librosa

    edges = mel_band_edges_hz(CFG)
    points = librosa.mel_frequencies(CFG.n_mels + 2, fmin=CFG.f_min, fmax=CFG.f_max)
    np.testing.assert_allclose(mel_band_centres_hz(CFG), points[1:-1], rtol=1e-6)
    assert edges[0] == pytest.approx(CFG.f_min) and edges[-1] == pytest.approx(CFG.f_max)
    assert np.all(np.diff(edges) > 0) and edges.size == CFG.n_mels + 1
    # A tick sits where its frequency falls between the band centres (row k + 0.5 is band k's centre).
    for row, label in frequency_ticks(CFG):
        hz = float(label[:-1]) * 1000 if label.endswith("k") else float(label)
        below = np.searchsorted(points[1:-1], hz) - 1
        assert below - 0.5 <= row <= below + 1.5


def _grid_tiles(cols: int, rows: int, west: float, north: float, step: float, angle: float = 0.0):
    """Synthetic tiles on a (possibly rotated) lon/lat grid; row 0 at the north."""
    ca, sa = math.cos(angle), math.sin(angle)

    def at(c: float, r: float) -> tuple[float, float]:
        dx, dy = c * step, -r * step
        return west + ca * dx - sa * dy, north + sa * dx + ca * dy

    lon, lat, fp, grid = [], [], [], []
    for r in range(rows):
        for c in range(cols):
            x, y = at(c + 0.5, r + 0.5)
            lon.append(x)
            lat.append(y)
            fp.append([at(c, r), at(c + 1, r), at(c + 1, r + 1), at(c, r + 1)])
            grid.append((c, r))
    n = len(lon)
    return SimpleNamespace(lon=np.array(lon), lat=np.array(lat), footprints=np.array(fp),
                           source=np.zeros(n, np.int32), grid=np.array(grid, np.int32))


@pytest.mark.parametrize("angle", [0.0, 0.2])
def test_heat_cells_land_on_their_tiles(angle: float) -> None:
    tiles = _grid_tiles(6, 4, 10.0, 50.0, 0.01, angle)
    layout = layout_tiles(tiles)
    values = np.arange(24, dtype=np.float64)
    lut = np.stack([np.arange(256)] * 3, axis=1).astype(np.uint8)
    (rgba, affine), = layout.rasterise(values, lut, (0.0, 23.0))
    g = layout.grids[0]
    assert rgba.shape == (4, 6, 4) and (rgba[..., 3] > 0).sum() == 24
    for i in range(24):
        c, r = tiles.grid[i]
        assert rgba[r, c, 0] == int(np.clip(values[i] / 23 * 255, 0, 255))
        # The affine puts the cell's centre on the tile's centre (Mercator, within a metre).
        x, y = g.cell_centre(r, c)
        assert x == pytest.approx(float(layout.x[i]), abs=1.0) and y == pytest.approx(float(layout.y[i]), abs=1.0)


def test_heat_without_a_grid_falls_back_to_tile_boxes() -> None:
    tiles = _grid_tiles(5, 3, -3.0, 40.0, 0.02)
    del tiles.grid
    layout = layout_tiles(tiles)
    values = np.full(15, np.nan)
    values[7] = 1.0  # column 2, row 1
    (rgba, _), = layout.rasterise(values, np.full((256, 3), 200, np.uint8), (0.0, 1.0))
    assert rgba.shape == (3, 5, 4) and (rgba[..., 3] > 0).sum() == 1 and rgba[1, 2, 3] > 0
    west, south, east, north = layout.bounds
    x0, y0 = geo.lonlat_to_mercator(-3.0, 40.0 - 0.06)
    assert west == pytest.approx(float(x0)) and south == pytest.approx(float(y0))
    assert list(layout.visible(float(x0), float(y0), float(x0) + 1.0, float(y0) + 1.0)) == [10]


def test_metrics_tail_reads_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.read_new() == []
    with open(path, "w") as f:
        f.write(json.dumps({"event": "start"}) + "\n" + '{"event": "st')
    assert tail.read_new() == [{"event": "start"}]
    with open(path, "a") as f:
        f.write('ep", "step": 1}\nnot json\n[1, 2]\n')
    assert tail.read_new() == [{"event": "step", "step": 1}]
    assert tail.bad_lines == 1


def test_presets_are_read_from_the_engine() -> None:
    presets = available_presets()
    assert presets and presets[0] in ("demo-cpu", "tiny")
