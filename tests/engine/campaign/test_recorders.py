"""Recorder files: AudioMoth files as the firmware writes them (checked with metamoth's own reader), GUANO
written with the guano library, Song Meter names, and a header that would hang metamoth's walker."""

from __future__ import annotations

import struct
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import guano
import pytest
from metamoth import parse_metadata

from engine.campaign.recorders import UnreadableAudio, read_facts
from engine.campaign.writers import write_guano_wav
from tests.engine.campaign.helpers import audiomoth_file, plain_wav, tone


def test_audiomoth_file_parses_with_metamoth_and_the_scan(tmp_path: Path) -> None:
    start = datetime(2019, 5, 22, 6, 30, tzinfo=UTC)
    path = audiomoth_file(tmp_path, start, seconds=1.5, rate=16000)
    assert path.name == "20190522_063000.WAV"
    meta = parse_metadata(path)  # the reference reader walks the RIFF chunks itself
    assert meta.audiomoth_id == "24F319055FDF2F5B"
    assert meta.datetime == datetime(2019, 5, 22, 6, 30) and meta.timezone.utcoffset(None) == timedelta(0)
    assert meta.samplerate_hz == 16000 and meta.duration_s == pytest.approx(1.5)
    assert meta.temperature_c == pytest.approx(18.3) and meta.battery_state_v == pytest.approx(4.2)
    facts = read_facts(path)
    assert (facts.recorder, facts.recorder_model, facts.start) == ("24F319055FDF2F5B", "audiomoth", start)
    assert facts.time_source == "audiomoth comment"
    assert dict(facts.details)["gain"] == "medium"


def test_guano_written_with_the_guano_library(tmp_path: Path) -> None:
    local = datetime(2019, 5, 22, 2, 30, tzinfo=timezone(timedelta(hours=-4)))
    path = tmp_path / "anything.wav"
    write_guano_wav(path, tone(1.0, 22050), 22050, {"Timestamp": local, "Loc Position": (24.56, -77.75),
                                                    "Serial": "S4A03895", "Make": "Wildlife Acoustics, Inc.",
                                                    "Model": "SM4"})
    assert guano.GuanoFile(str(path))["Serial"] == "S4A03895"
    facts = read_facts(path)
    assert facts.start == local and facts.start.astimezone(UTC).hour == 6
    assert (facts.lon, facts.lat) == (-77.75, 24.56)
    assert (facts.recorder, facts.recorder_model, facts.time_source) == ("S4A03895", "song-meter", "guano")


def test_song_meter_names_are_local_and_naive(tmp_path: Path) -> None:
    facts = read_facts(plain_wav(tmp_path / "S4A03895_20190522_063000.wav"))
    assert (facts.recorder, facts.prefix, facts.recorder_model) == ("S4A03895", "S4A03895", "song-meter")
    assert facts.start == datetime(2019, 5, 22, 6, 30) and facts.start.tzinfo is None
    sm_mini = read_facts(plain_wav(tmp_path / "SMM01234_0+1_20200101_235959.wav"))
    assert (sm_mini.recorder, sm_mini.start) == ("SMM01234", datetime(2020, 1, 1, 23, 59, 59))
    named_moth = read_facts(plain_wav(tmp_path / "20190522_063000.WAV"))  # no comment: the name, in UTC
    assert named_moth.start == datetime(2019, 5, 22, 6, 30, tzinfo=UTC) and named_moth.recorder_model == "audiomoth"
    assert read_facts(plain_wav(tmp_path / "morning walk.wav")).start is None


def test_riff_size_past_the_end_does_not_hang(tmp_path: Path) -> None:
    """metamoth.parse_metadata loops forever on this header (why the scan reads the comment itself)."""
    path = audiomoth_file(tmp_path, datetime(2019, 5, 22, 6, 30, tzinfo=UTC))
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", len(data) - 8 + 1000)  # a recorder that lost power before fixing it
    path.write_bytes(bytes(data))
    result: list = []
    reader = threading.Thread(target=lambda: result.append(read_facts(path)), daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert result and result[0].recorder == "24F319055FDF2F5B"


def test_garbage_with_an_audio_suffix_is_unreadable(tmp_path: Path) -> None:
    bad = tmp_path / "20190522_063000.WAV"
    bad.write_bytes(b"this is not a wave file at all" * 10)
    with pytest.raises(UnreadableAudio):
        read_facts(bad)


def test_flac_and_other_guano_makers(tmp_path: Path) -> None:
    import soundfile as sf

    flac = tmp_path / "S4A03895_20190522_063000.flac"
    sf.write(flac, tone(1.0, 24000), 24000, format="FLAC", subtype="PCM_16")
    facts = read_facts(flac)
    assert (facts.sample_rate, facts.recorder, facts.start) == (24000, "S4A03895", datetime(2019, 5, 22, 6, 30))
    other = tmp_path / "bat.wav"
    write_guano_wav(other, tone(1.0, 22050), 22050, {"Make": "Titley Scientific", "Model": "Chorus",
                                                     "Timestamp": datetime(2020, 7, 1, 22, 0, tzinfo=UTC)})
    facts = read_facts(other)
    assert (facts.recorder_model, facts.recorder, facts.start) == ("guano", None, datetime(2020, 7, 1, 22, 0, tzinfo=UTC))
