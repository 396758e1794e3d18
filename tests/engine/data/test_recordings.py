"""Reading recordings (an atlas's) from a pair table or SoundingEarth through the data layer."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from engine.data.soundingearth import METADATA_COLUMNS
from engine.data.source import scan_recordings
from engine.errors import DatasetError


def _soundingearth(folder: Path, name: str = "metadata.csv") -> Path:
    rows = [("aporee_7549_9294", 9294, 13.4, 52.5, "Berlin yard", "yard.flac"),
            ("aporee_1_12", 12, -0.1, 51.5, "London", "london.flac"),  # no raw audio: skipped
            ("aporee_2_17", 17, 2.3, 95.0, "Bad latitude", "paris.flac")]  # impossible: skipped
    lines = [",".join(METADATA_COLUMNS)]
    for long_key, key, lon, lat, title, mp3 in rows:
        values = {"long_key": long_key, "key": key, "longitude": lon, "latitude": lat, "title": title,
                  "mp3name": mp3}
        lines.append(",".join(str(values.get(c, "")) for c in METADATA_COLUMNS))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")
    for long_key, *_, mp3 in (rows[0], rows[2]):
        (folder / "raw_audio" / long_key).mkdir(parents=True)
        sf.write(folder / "raw_audio" / long_key / mp3, np.zeros(8000, np.float32), 8000)
    return folder / name


def test_soundingearth_metadata_finds_raw_audio(tmp_path: Path) -> None:
    table = _soundingearth(tmp_path / "se")
    scan = scan_recordings(table)
    assert scan.layout == scan.kind == "soundingearth"
    # The dataset's key identifies a row everywhere in the engine (training, evaluation, atlases).
    assert [r.key for r in scan.records] == ["9294"]
    row = scan.records[0]
    assert (row.lon, row.lat, row.title) == (13.4, 52.5, "Berlin yard")
    assert row.audio == tmp_path / "se" / "raw_audio" / "aporee_7549_9294" / "yard.flac"
    assert row.image is None  # no images/ folder: the recording is still usable
    assert scan.report.counts == {"missing audio": 1, "bad coordinates": 1}
    assert scan.report.describe() == "3 rows: 1 usable, 1 bad coordinates, 1 missing audio"
    (missing,), (impossible,) = scan.report.examples["missing audio"], scan.report.examples["bad coordinates"]
    assert "key 12" in missing and "aporee_1_12" in missing and "key 17" in impossible
    # With the image in place it is found; the folder works as well as the table.
    (tmp_path / "se" / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "se" / "images" / "9294.jpg")
    assert scan_recordings(tmp_path / "se").records[0].image == tmp_path / "se" / "images" / "9294.jpg"


def test_soundingearth_metadata_is_told_by_its_columns_and_needs_raw_audio(tmp_path: Path) -> None:
    table = _soundingearth(tmp_path / "se", name="subset.csv")  # renamed: its header tells
    assert scan_recordings(table).layout == "soundingearth"
    shutil.rmtree(tmp_path / "se" / "raw_audio")
    with pytest.raises(DatasetError, match=f"{tmp_path / 'se' / 'raw_audio'}: folder missing; .*fetch it"):
        scan_recordings(table)


def test_pair_table_paths_are_relative_to_the_table(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "sub" / "a.wav", np.zeros(4000, np.float32), 8000)
    (tmp_path / "sub" / "pairs.csv").write_text("id,longitude,latitude,image,audio,title\n"
                                                "x1,1.5,2.5,img/x1.png,a.wav,First\nx2,1,2,,,\n")
    scan = scan_recordings(tmp_path / "sub" / "pairs.csv")
    assert scan.kind == "pair-table" and [r.key for r in scan.records] == ["x1"]
    assert scan.records[0].audio == tmp_path / "sub" / "a.wav" and scan.records[0].title == "First"
    assert scan.records[0].image == tmp_path / "sub" / "img" / "x1.png"  # as given; not needed to exist
    assert scan.report.describe() == "2 rows: 1 usable, 1 missing audio"
    assert "x2" in scan.report.examples["missing audio"][0]
    (tmp_path / "no_image.csv").write_text("id,longitude,latitude,audio\nx1,1,2,sub/a.wav\n")
    assert [r.image for r in scan_recordings(tmp_path / "no_image.csv").records] == [None]
    (tmp_path / "bad.csv").write_text("name,lon,lat\na,1,2\n")
    with pytest.raises(DatasetError, match=r"bad.csv: missing column\(s\) id, longitude, latitude, audio;"):
        scan_recordings(tmp_path / "bad.csv")
    with pytest.raises(DatasetError, match="none.csv: not found"):
        scan_recordings(tmp_path / "none.csv")
