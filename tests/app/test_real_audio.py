"""The real audio path: PortAudio -> ALSA -> PulseAudio. A private PulseAudio server plays a real
recording into a null sink whose monitor is the default input; ``soundscape --record-seconds`` records
it through sounddevice (the record button's path) and must find the same best tiles as opening the file.

PortAudio reads its device list when sounddevice is imported, so the app runs in a subprocess started
after the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.atlas import open_atlas
from engine.audio import probe_audio
from engine.inference.encoders import BundleEncoders
from tests.app import independent
from tests.app.pulse_server import PulseServer, missing_pieces
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def pulse(tmp_path: Path):
    missing = missing_pieces()
    if missing:
        pytest.skip(f"the real audio path needs {', '.join(missing)} (scripts/system_deps.sh installs them)")
    server = PulseServer(tmp_path / "pulse")
    server.start()
    yield server
    server.stop()


def test_recording_through_sounddevice_finds_the_same_tiles_as_the_file(pulse: PulseServer, tmp_path: Path,
                                                                        built_atlas: Path, bundle_path: Path,
                                                                        realdata: Path) -> None:
    clip = realdata / "audio" / "S4A03895_20190522_060000.wav"  # dawn chorus, 10 s at 22,000 Hz
    seconds = probe_audio(clip).duration + 2.0
    env = pulse.env | {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"),
                       "QT_QPA_PLATFORM": "offscreen"}
    app = subprocess.Popen([sys.executable, "-m", "app.main", "--screenshot", str(tmp_path / "rec.png"),
                            "--atlas", str(built_atlas), "--bundle", str(bundle_path),
                            "--record-seconds", f"{seconds:g}", "--print-matches"],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr: list[str] = []
    started = threading.Event()

    def read_stderr() -> None:
        for line in app.stderr:  # type: ignore[union-attr]
            stderr.append(line)
            if line.startswith("recording "):
                started.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        if not started.wait(timeout=90):
            app.kill()
            pytest.fail(f"the app did not start recording: {''.join(stderr)[-2000:]}")
        pulse.play(clip)
        stdout, _ = app.communicate(timeout=120)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        reader.join(timeout=10)
    assert app.returncode == 0, "".join(stderr)[-2000:]
    assert any(line.startswith("recording ") for line in stderr)
    recorded = json.loads(stdout)
    atlas = open_atlas(built_atlas)
    query = BundleEncoders(bundle_path).embed_audio_file(clip)
    d = independent.distances(atlas.tiles.embeddings, query, atlas.distance)
    want = [int(atlas.tiles.ids[i]) for i in np.argsort(d, kind="stable")[:len(recorded)]]
    got = [m["tile_id"] for m in recorded]
    # The same best tiles: the top 5 in order, and 22 of the top 24 (tiles far down the ranking with
    # near-equal scores may swap: the recording went through PulseAudio's resampler and 16-bit PCM),
    # each with the file's score within 2 %.
    assert got[:5] == want[:5]
    assert len(set(got) & set(want)) >= 22
    file_scores = independent.scores(d, atlas.distance)
    for m in recorded:
        assert abs(m["score"] - file_scores[m["tile_id"]]) < 0.02 * file_scores[m["tile_id"]]

def test_a_row_plays_its_recording_through_the_speakers(pulse: PulseServer, tmp_path: Path, built_atlas: Path,
                                                        bundle_path: Path) -> None:
    """The play button of a tile's best recording, through sounddevice into the sink; what reaches the
    sink (recorded from its monitor with parecord) must be that recording."""
    import numpy as np
    import soundfile as sf
    from scipy.signal import correlate

    from engine.audio import load_audio

    captured = tmp_path / "captured.wav"
    env = pulse.env | {"QT_QPA_PLATFORM": "offscreen"}
    recorder = subprocess.Popen(["parecord", "--device=soundscape_test.monitor", "--rate=22050", "--channels=1",
                                 "--format=s16le", "--file-format=wav", str(captured)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        driver = subprocess.run([sys.executable, "-m", "tests.app.play_driver", str(built_atlas), str(bundle_path),
                                 str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    finally:
        recorder.terminate()
        recorder.wait(timeout=10)
    assert driver.returncode == 0, driver.stderr[-2000:]
    report = json.loads(driver.stdout.strip().splitlines()[-1])
    assert report["enabled"] and report["showed_stop"] and report["finished"] and report["button_after"] == "▶"
    # The playhead on the Listen spectrogram moved forward with the frames PortAudio took, to the clip's end.
    from engine.audio import probe_audio as probe

    heads = report["playheads"]
    assert report["clip"] == report["path"] and len(heads) >= 5
    assert all(b > a for a, b in zip(heads, heads[1:], strict=False))
    assert heads[-1] == pytest.approx(min(probe(report["path"]).duration, 600.0), abs=0.1)
    got, rate = sf.read(captured, dtype="float32")
    source, _ = load_audio(report["path"], rate)
    assert np.abs(got).max() > 0.01, "nothing reached the sink"
    # Align by cross-correlation, then compare the overlapping part.
    lag = int(np.argmax(correlate(got, source, mode="full", method="fft"))) - (source.size - 1)
    a = got[max(lag, 0):]
    b = source[max(-lag, 0):]
    n = min(a.size, b.size)
    assert n > 0.9 * source.size
    assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.8
