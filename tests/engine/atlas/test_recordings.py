"""Reading recordings for an atlas from a pair table or SoundingEarth's metadata.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.atlas.recordings import read_recording_table
from engine.errors import DatasetError

SE_COLUMNS = ["long_key", "key", "longitude", "latitude", "altitude", "description", "date_recorded",
              "date_uploaded", "creator", "licenseurl", "title", "mp3name", "mp3mb", "mp3seconds", "mp3channels",
              "mp3bitrate", "mp3samplerate", "mp3file"]


def test_soundingearth_metadata_finds_raw_audio(tmp_path: Path) -> None:
    rows = [("aporee_7549_9294", 9294, 13.4, 52.5, "Berlin yard", "yard.flac"),
            ("aporee_1_12", 12, -0.1, 51.5, "London", "london.flac"),  # no raw audio: skipped
            ("aporee_2_17", 17, 2.3, 95.0, "Bad latitude", "paris.flac")]  # impossible: skipped
    lines = [",".join(SE_COLUMNS)]
    for long_key, key, lon, lat, title, mp3 in rows:
        values = {"long_key": long_key, "key": key, "longitude": lon, "latitude": lat, "title": title,
                  "mp3name": mp3}
        lines.append(",".join(str(values.get(c, "")) for c in SE_COLUMNS))
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n")
    for long_key, *_, mp3 in (rows[0], rows[2]):
        (tmp_path / "raw_audio" / long_key).mkdir(parents=True)
        sf.write(tmp_path / "raw_audio" / long_key / mp3, np.zeros(8000, np.float32), 8000)
    table = read_recording_table(tmp_path / "metadata.csv")
    assert table.kind == "soundingearth" and [r.id for r in table.rows] == ["aporee_7549_9294"]
    row = table.rows[0]
    assert (row.lon, row.lat, row.title) == (13.4, 52.5, "Berlin yard")
    assert row.audio == (tmp_path / "raw_audio" / "aporee_7549_9294" / "yard.flac").resolve()
    assert row.image == tmp_path.resolve() / "images" / "9294.jpg"
    assert len(table.skipped) == 2
    assert "audio file missing" in table.skipped[0] and "impossible coordinates" in table.skipped[1]


def test_pair_table_paths_are_relative_to_the_table(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "sub" / "a.wav", np.zeros(4000, np.float32), 8000)
    (tmp_path / "sub" / "pairs.csv").write_text("id,longitude,latitude,image,audio,title\n"
                                                "x1,1.5,2.5,img/x1.png,a.wav,First\nx2,1,2,,,\n")
    table = read_recording_table(tmp_path / "sub" / "pairs.csv")
    assert [r.id for r in table.rows] == ["x1"] and table.rows[0].audio == (tmp_path / "sub" / "a.wav").resolve()
    assert "x2" in table.skipped[0]
    (tmp_path / "bad.csv").write_text("name,lon,lat\na,1,2\n")
    with pytest.raises(DatasetError, match=r"bad.csv: missing column\(s\) \['id', 'longitude', 'latitude', 'audio'\]"):
        read_recording_table(tmp_path / "bad.csv")
    with pytest.raises(DatasetError, match="recordings table not found"):
        read_recording_table(tmp_path / "none.csv")
