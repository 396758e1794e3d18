"""SoundingEarth as distributed: scanning, skip counts, decoded values, both audio sources."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.audio import FrontEndConfig, mel_filterbank, normalise
from engine.config.data import DataConfig
from engine.data.images import decode_central_region
from engine.data.soundingearth import METADATA_COLUMNS, decode_spectrogram_jpg, encode_spectrogram_jpg
from engine.data.source import open_source
from engine.errors import AudioFileError, DatasetError, ImageFileError
from tests.engine.fixtures import SoundingEarthFixture, make_soundingearth


@pytest.fixture(scope="module")
def se(tmp_path_factory: pytest.TempPathFactory) -> SoundingEarthFixture:
    return make_soundingearth(tmp_path_factory.mktemp("soundingearth"))


def test_fixture_has_the_distributed_layout(se: SoundingEarthFixture) -> None:
    with open(se.root / "metadata.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == list(METADATA_COLUMNS) and len(header) == 18
    with Image.open(se.root / "images" / f"{se.full_size[0]}.jpg") as im:
        assert im.size == (1024, 1024) and im.format == "JPEG"
    with Image.open(se.root / "spectrograms" / f"{se.keys[0]}.jpg") as im:
        assert im.mode == "L" and im.size[1] == 128


def test_spectrogram_source_counts_and_skips(se: SoundingEarthFixture) -> None:
    source = open_source(se.root, DataConfig(audio_source="spectrogram"))
    assert source.layout == "soundingearth" and source.audio_source == "spectrogram"
    assert source.report.rows == 12
    assert source.report.counts == {"missing image": 1, "bad coordinates": 1}
    assert source.report.usable == len(source) == 10
    keys = {int(r.key) for r in source.records}
    assert se.missing_image not in keys and se.bad_latitude not in keys
    assert se.corrupt_image in keys  # present on disk: found unreadable only when decoded
    assert source.report.describe() == "12 rows: 10 usable, 1 bad coordinates, 1 missing image"
    # Paper split: key % 10 in {2, 5} test, 7 val, else train (4105 has lat 95 and 4102 no image).
    expected = {k: ("test" if k % 10 in (2, 5) else "val" if k % 10 == 7 else "train") for k in keys}
    assert {int(r.key): s for r, s in zip(source.records, source.splits, strict=True)} == expected
    assert source.split_rule == "paper"


def test_spectrogram_values_decode_to_the_encoded_log_mel(se: SoundingEarthFixture) -> None:
    key = se.keys[0]
    x = decode_spectrogram_jpg(se.root / "spectrograms" / f"{key}.jpg")
    truth = se.log_mels[key]
    assert x.shape == truth.shape and x.dtype == np.float32
    # One 8-bit step of exp(x/10) is (e^.5 - e^-1.5)/255 ~ 0.0056; at x = -15 that is 10*0.0056/e^-1.5
    # ~ 0.25 in x, at x = 5 about 0.034; JPEG at quality 100 adds about a step.
    step = 10 * (math.exp(0.5) - math.exp(-1.5)) / 255 / np.exp(truth / 10)
    assert np.all(np.abs(x - truth) <= 2.5 * step + 1e-4)
    assert x.min() >= -15.0 - 1e-4 and x.max() <= 5.0 + 1e-4
    # Pixel 0 and 255 are exactly the clip limits.
    assert decode_limits(se.root) == pytest.approx((-15.0, 5.0), abs=1e-4)
    source = open_source(se.root, DataConfig(audio_source="spectrogram"))
    i = [r.key for r in source.records].index(str(key))
    np.testing.assert_allclose(source.log_mel(i), normalise(x, FrontEndConfig()), rtol=1e-6, atol=1e-6)


def decode_limits(folder: Path) -> tuple[float, float]:
    path = folder / "limits.png"
    Image.fromarray(np.array([[0, 255]] * 128, np.uint8), mode="L").save(path)
    x = decode_spectrogram_jpg(path)
    return float(x[:, 0].mean()), float(x[:, 1].mean())


def test_spectrogram_encoding_round_trip() -> None:
    x = np.linspace(-20, 10, 128 * 4, dtype=np.float32).reshape(128, 4)
    pixels = encode_spectrogram_jpg(x)
    assert pixels[0, 0] == 0 and pixels[-1, -1] == 255  # clipped to [-15, 5]
    v = pixels * (math.exp(0.5) - math.exp(-1.5)) / 255 + math.exp(-1.5)
    np.testing.assert_allclose(np.exp(np.clip(x, -15, 5) / 10), v, atol=0.5 * (math.exp(0.5) - math.exp(-1.5)) / 255 + 1e-9)


def test_images_decode_to_their_central_region(se: SoundingEarthFixture) -> None:
    for key in (se.full_size[0], se.keys[7]):  # a 1024 px JPEG (DCT-scaled decode) and a 256 px one
        region = decode_central_region(se.root / "images" / f"{key}.jpg", region=0.5, size=64)
        assert region.shape == (64, 64, 3) and region.dtype == np.uint8
        # The central half of the image is the uniform square of a known colour.
        assert np.abs(region[8:56, 8:56].astype(int) - se.centre_colour[key].astype(int)).max() <= 6
    # Against PIL's full decode, cropped and resized independently.
    path = se.root / "images" / f"{se.full_size[0]}.jpg"
    with Image.open(path) as im:
        full = np.asarray(im.convert("RGB").crop((128, 128, 896, 896)).resize((96, 96), Image.Resampling.BILINEAR))
    ours = decode_central_region(path, region=0.75, size=96)
    assert np.abs(ours.astype(int) - full.astype(int)).mean() < 6


def test_corrupt_files_raise_clear_errors(se: SoundingEarthFixture) -> None:
    with pytest.raises(ImageFileError, match=f"{se.corrupt_image}.jpg: unreadable image"):
        decode_central_region(se.root / "images" / f"{se.corrupt_image}.jpg", 0.75, 64)
    with pytest.raises(AudioFileError, match=f"{se.truncated_spectrogram}.jpg: unreadable spectrogram"):
        decode_spectrogram_jpg(se.root / "spectrograms" / f"{se.truncated_spectrogram}.jpg")


def test_raw_audio_source_uses_the_front_end(se: SoundingEarthFixture) -> None:
    source = open_source(se.root, DataConfig(audio_source="raw"))
    assert source.audio_source == "raw"
    # 9 rows have raw audio; of those, one has no image and one has latitude 95.
    assert source.report.counts == {"missing image": 1, "bad coordinates": 1, "missing audio": 3}
    assert len(source) == 7
    cfg = FrontEndConfig()
    centres = mel_filterbank(cfg).argmax(axis=1)  # FFT bin at the peak of each mel band
    bin_hz = cfg.sample_rate / cfg.n_fft
    for i, record in enumerate(source.records):
        key = int(record.key)
        if key in (se.truncated_raw, se.corrupt_image):
            continue
        mel = source.log_mel(i)
        # A 3 s MP3 at 44.1 kHz -> ~130 frames at 22,050 Hz / 512 (MP3 adds a little padding).
        assert mel.shape[0] == 128 and 125 <= mel.shape[1] <= 140
        band = int(np.argmax(mel[:, 10:-10].mean(axis=1)))
        assert abs(centres[band] * bin_hz - se.raw_tones[key]) <= 0.08 * se.raw_tones[key] + 2 * bin_hz
    truncated = [r.key for r in source.records].index(str(se.truncated_raw))
    with pytest.raises(AudioFileError, match="truncated"):
        source.log_mel(truncated)


def test_missing_column_stops_with_the_column_named(tmp_path: Path, se: SoundingEarthFixture) -> None:
    root = tmp_path / "se"
    (root / "images").mkdir(parents=True)
    (root / "spectrograms").mkdir()
    with open(se.root / "metadata.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(root / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[c for c in METADATA_COLUMNS if c != "latitude"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DatasetError) as err:
        open_source(root)
    assert str(err.value).startswith(f"{root / 'metadata.csv'}: missing column(s) latitude;")


def test_missing_folders_stop_with_the_folder_named(tmp_path: Path) -> None:
    root = tmp_path / "se"
    root.mkdir()
    (root / "metadata.csv").write_text(",".join(METADATA_COLUMNS) + "\n")
    with pytest.raises(DatasetError, match=f"{root / 'images'}: folder missing"):
        open_source(root)
    (root / "images").mkdir()
    with pytest.raises(DatasetError, match=f"{root / 'raw_audio'}: folder missing"):
        open_source(root)  # auto: no spectrograms/ -> raw, and raw_audio/ is missing too
    with pytest.raises(DatasetError, match=f"{root / 'spectrograms'}: folder missing"):
        open_source(root, DataConfig(audio_source="spectrogram"))
    with pytest.raises(DatasetError, match="not found"):
        open_source(tmp_path / "nowhere")
