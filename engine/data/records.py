"""What every dataset layout is read into: a list of pair records and a count of the rows skipped."""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import DatasetError

# How a pair's sound is stored: a real audio file (decoded by the front-end) or a SoundingEarth
# spectrogram JPEG (8-bit encoding, decoded by engine.data.soundingearth).
AUDIO_FILE = "audio"
SPECTROGRAM_JPG = "spectrogram_jpg"

# Reasons a row is skipped, in the order a summary lists them.
SKIP_REASONS = ("bad coordinates", "missing image", "missing audio", "unreadable image", "unreadable audio")


@dataclass(frozen=True)
class PairRecord:
    """One image-sound pair of a dataset.

    ``key`` is the dataset's identifier as text (SoundingEarth's integer ``key``, a pair table's
    ``id``); ``number`` is the integer form when there is one (the paper split uses ``key % 10``).
    ``split`` is the value of a ``split`` column when the layout has one. ``image`` is None only for a
    recording read without its image (an atlas's recordings, see
    :func:`engine.data.source.scan_recordings`).
    """

    key: str
    lon: float
    lat: float
    image: Path | None
    audio: Path
    audio_kind: str = AUDIO_FILE
    split: str | None = None
    number: int | None = None
    title: str = ""


def valid_coordinates(lon: float, lat: float) -> bool:
    """True for finite WGS84 degrees inside [-180, 180] x [-90, 90]."""
    return math.isfinite(lon) and math.isfinite(lat) and -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0


def read_csv_table(path: Path, required: Sequence[str], missing_fix: str, unreadable_fix: str
                   ) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV table's header (names stripped) and rows, as a dataset layout reads it.

    Args:
        path: the CSV file (UTF-8, with or without a byte-order mark).
        required: columns the layout needs.
        missing_fix, unreadable_fix: the fix each error names.
    Raises:
        DatasetError: a required column is missing, or the file cannot be read as UTF-8 CSV.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing = [c for c in required if c not in header]
            if missing:
                other = _other_delimiter(header, required)
                if other:
                    raise DatasetError(path, f"the file seems to use {other} as delimiter, not commas (its columns "
                                       f"{', '.join(required)} are there)", "save it comma-separated")
                raise DatasetError(path, f"missing column(s) {', '.join(missing)}", missing_fix)
            return header, list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(path, f"unreadable ({err})", unreadable_fix) from None


_DELIMITER_NAMES = {";": "';'", "\t": "tab", "|": "'|'"}


def _other_delimiter(header: list[str], required: Sequence[str]) -> str | None:
    """The name of the delimiter that would give all ``required`` columns, when a comma-separated read did
    not (a spreadsheet saved in a locale whose list separator is ';' or as tab-separated text)."""
    line = ",".join(header)  # the header line again (a comma read joins what it split back up)
    for delimiter, name in _DELIMITER_NAMES.items():
        names = {h.strip().strip('"') for h in line.split(delimiter)}
        if delimiter in line and all(c in names for c in required):
            return name
    return None


def parse_float(text: str | None) -> float:
    """A CSV cell as float; NaN when empty or not a number (so coordinate checks reject it)."""
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


class SkipReport:
    """Counts rows by outcome and keeps the first few messages of each kind for the log."""

    def __init__(self, rows: int = 0) -> None:
        self.rows = rows
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def skip(self, reason: str, message: str) -> None:
        self.counts[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < 3:
            examples.append(message)

    @property
    def skipped(self) -> int:
        return sum(self.counts.values())

    @property
    def usable(self) -> int:
        return self.rows - self.skipped

    def describe(self) -> str:
        """e.g. ``50,545 rows: 49,870 usable, 512 missing image, 163 unreadable audio``."""
        parts = [f"{self.rows:,} rows: {self.usable:,} usable"]
        order = list(SKIP_REASONS) + sorted(set(self.counts) - set(SKIP_REASONS))
        parts += [f"{self.counts[r]:,} {r}" for r in order if self.counts.get(r)]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "usable": self.usable, **{r: int(c) for r, c in self.counts.items()}}
