"""What a recorder file says about itself: its name (AudioMoth, Song Meter), its WAV header, the AudioMoth
comment and GUANO metadata. Reads headers only, never the audio (torch-free).

Libraries: soundfile (libsndfile) for the format, frames and the RIFF INFO comment; ``guano`` for GUANO;
``metamoth``'s comment parser for the AudioMoth comment. We do not call ``metamoth.parse_metadata``: its
RIFF walker loops forever on a WAV whose RIFF size is larger than the file (a recorder that lost power
before fixing its header: at the end of the file it reads empty chunks of size 0 without advancing), and it
assumes 16-bit samples. libsndfile reads the same ICMT comment safely, and metamoth parses its text.
"""

from __future__ import annotations

import logging
import re
import struct
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import soundfile as sf

from engine.audio.front_end import SUPPORTED_EXTENSIONS

log = logging.getLogger(__name__)

# What the engine reads (libsndfile): WAV and FLAC from recorders, and compressed copies (MP3, Ogg) that
# some teams keep or share.
AUDIO_SUFFIXES = set(SUPPORTED_EXTENSIONS)
# AudioMoth: 20190522_063000.WAV (UTC unless the comment says otherwise). Song Meter SM4, SM Mini, SM4BAT:
# PREFIX_20190522_063000.wav, the prefix being the recorder's name (default its serial, e.g. S4A03895),
# in the recorder's local time; some firmware adds a channel suffix like _0+1_ before the time.
AUDIOMOTH_NAME = re.compile(r"^(?P<date>\d{8})_(?P<time>\d{6})$")
SONG_METER_NAME = re.compile(r"^(?P<prefix>[A-Za-z0-9-]+?)(?:_\d\+\d)?_(?P<date>\d{8})_(?P<time>\d{6})(?:_.*)?$")


class UnreadableAudio(Exception):
    """The file has an audio suffix but libsndfile cannot read its header."""


@dataclass(frozen=True)
class FileFacts:
    """Everything the scan learns from one file before positions and sites are resolved.

    ``start`` is tz-aware when the source says the offset (AudioMoth: UTC or the comment's offset; GUANO
    with an offset), naive when it is the recorder's local time (Song Meter names, GUANO without offset).
    """

    sample_rate: int
    channels: int
    duration_s: float
    recorder: str | None
    recorder_model: str  # 'audiomoth' | 'song-meter' | 'guano' | 'unknown'
    start: datetime | None
    time_source: str  # 'audiomoth comment' | 'guano' | 'file name' | ''
    lon: float | None = None  # from GUANO Loc Position
    lat: float | None = None
    prefix: str | None = None  # the file name's recorder prefix (Song Meter)
    details: tuple[tuple[str, Any], ...] = ()  # gain, battery, temperature, make/model ...


def read_facts(path: Path) -> FileFacts:
    """Read one recorder file's header and metadata.

    Raises:
        UnreadableAudio: libsndfile cannot open it (corrupt, empty, or not audio despite its suffix).
    """
    try:
        with sf.SoundFile(str(path)) as f:
            rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
            comment = f.comment if path.suffix.lower() == ".wav" else ""
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise UnreadableAudio(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    duration = frames / rate if rate else 0.0
    details: list[tuple[str, Any]] = []
    recorder: str | None = None
    model = "unknown"
    start: datetime | None = None
    source = ""
    lon = lat = None

    name = _parse_name(path.stem)
    prefix = name[0] if name else None
    if name:
        recorder, start, source = prefix, name[1], "file name"
        model = "song-meter" if prefix else "audiomoth"
        if not prefix:  # AudioMoth names are in UTC (the firmware's default)
            start = start.replace(tzinfo=UTC) if start else None

    moth = _parse_audiomoth_comment(comment) if comment else None
    # AudioMoth firmware writes no GUANO: skip the second open of the file for its files.
    guano_md = _read_guano(path) if path.suffix.lower() == ".wav" and not moth else None
    if guano_md:
        make, gmodel = str(guano_md.get("Make") or ""), str(guano_md.get("Model") or "")
        details += [("make", make), ("model", gmodel)]
        model = "song-meter" if "wildlife" in make.lower() or gmodel.upper().startswith("SM") else "guano"
        serial = guano_md.get("Serial")
        if serial:
            recorder = str(serial)
        stamp = guano_md.get("Timestamp")
        if isinstance(stamp, datetime):
            start, source = _plain_tz(stamp), "guano"
        position = guano_md.get("Loc Position")
        if position is not None:
            try:
                lat, lon = float(position[0]), float(position[1])
            except (TypeError, ValueError, IndexError):
                log.debug("%s: unusable GUANO Loc Position %r", path, position)

    if moth:
        recorder, model = moth["audiomoth_id"], "audiomoth"
        start, source = moth["datetime"].replace(tzinfo=moth["timezone"]), "audiomoth comment"
        details += [("gain", getattr(moth["gain"], "name", str(moth["gain"])).replace("AM_GAIN_", "").lower()),
                    ("battery_v", moth["battery_state_v"]), ("temperature_c", moth.get("temperature_c"))]
    return FileFacts(rate, channels, duration, recorder, model, start, source, lon, lat, prefix, tuple(details))


def _parse_name(stem: str) -> tuple[str | None, datetime | None] | None:
    """(recorder prefix or None for AudioMoth, naive start time) from a recorder file name, or None."""
    match = AUDIOMOTH_NAME.match(stem)
    prefix = None
    if not match:
        match = SONG_METER_NAME.match(stem)
        if not match:
            return None
        prefix = match.group("prefix")
    try:
        start = datetime.strptime(match.group("date") + match.group("time"), "%Y%m%d%H%M%S")
    except ValueError:  # 20191345_990000: a name of the right shape but no real time
        start = None
    return prefix, start


def _read_guano(path: Path) -> Any | None:
    """The file's GUANO metadata (a guano.GuanoFile), or None when it has none or it is unreadable."""
    import guano

    try:
        md = guano.GuanoFile(str(path))
    except (ValueError, struct.error, wave.Error, EOFError, OSError, UnicodeDecodeError) as err:
        # guano opens the file with the stdlib ``wave`` module, which refuses WAVE_FORMAT_EXTENSIBLE and
        # float WAVs on Python 3.11: such files simply carry no GUANO we can read.
        log.debug("%s: no readable GUANO (%s)", path, err)
        return None
    return md if md else None


def _parse_audiomoth_comment(comment: str) -> dict[str, Any] | None:
    """metamoth's parsers for each firmware's comment, tried in metamoth's order. We call them one by one
    rather than ``parse_comment``, which deep-copies every result through ``dataclasses.asdict`` (a third
    of the scan's time per file)."""
    if not comment.startswith("Recorded at"):
        return None
    from metamoth.parsing import MessageFormatError, parsers

    text = comment.strip("\x00 ")
    for parser in parsers.values():
        try:
            parsed = parser(text)
        except (MessageFormatError, ValueError, KeyError):
            continue
        return {"audiomoth_id": parsed.audiomoth_id, "datetime": parsed.datetime, "timezone": parsed.timezone,
                "gain": parsed.gain, "battery_state_v": parsed.battery_state_v,
                "temperature_c": getattr(parsed, "temperature_c", None)}
    log.debug("unparsed AudioMoth-like comment %r", comment)
    return None


def _plain_tz(moment: datetime) -> datetime:
    """GUANO's own tzinfo classes as a standard ``timezone`` (so times compare and print plainly)."""
    offset = moment.utcoffset()
    if offset is None:
        return moment.replace(tzinfo=None)
    return moment.replace(tzinfo=UTC if offset == timedelta(0) else timezone(offset))
