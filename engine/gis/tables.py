"""Matches and values as tables: CSV, and Raven Pro selection tables (tab-separated, Raven's columns).

A Raven selection table lists one selection per row with ``Selection, View, Channel, Begin Time (s),
End Time (s), Low Freq (Hz), High Freq (Hz)``; ours adds ``Begin Path`` and ``File Offset (s)`` (Raven's
own columns for selections in several files), then ``Rank, Recording, Title, Score, Distance, km``.
Each recording is one selection over its whole length and band; Begin Time counts along the
recordings as Raven lays several files end to end.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.gis.output import ExportError, atomic_output

RAVEN_COLUMNS = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)",
                 "Begin Path", "File Offset (s)", "Rank", "Recording", "Title", "Score", "Distance", "km"]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.8g}"
    return "" if value is None else str(value)


def write_rows(path: str | Path, header: Sequence[str], rows: Sequence[Sequence[Any]], delimiter: str = ",") -> Path:
    """Write a table atomically (NaN and None as empty cells)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_text(v) for v in row] for row in rows])
    data = buffer.getvalue().encode("utf-8")
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return path


def recording_match_rows(matches: Sequence[Any], durations: dict[str, float]) -> list[list[Any]]:
    """CSV rows (rank, id, title, path, duration_s, score, distance, km) of ``RecordingMatch``es."""
    return [[rank, m.id, m.title, m.path, durations.get(m.id, math.nan), m.score, m.distance, m.km]
            for rank, m in enumerate(matches, 1)]


MATCH_COLUMNS = ["rank", "id", "title", "path", "duration_s", "score", "distance", "km"]


def write_raven(path: str | Path, matches: Sequence[Any], durations: dict[str, float],
                high_freq: dict[str, float] | None = None) -> Path:
    """A Raven Pro selection table of recording matches (see the module docstring).

    Raises:
        ExportError: no matches, or the file cannot be written.
    """
    if not matches:
        raise ExportError(path, "no recordings to write", "choose a tile with recordings")
    rows, begin = [], 0.0
    for rank, m in enumerate(matches, 1):
        duration = durations.get(m.id, math.nan)
        length = duration if math.isfinite(duration) else 0.0
        top = (high_freq or {}).get(m.id, math.nan)
        rows.append([rank, "Spectrogram 1", 1, begin, begin + length, 0.0, top, m.path, 0.0, rank, m.id, m.title,
                     m.score, m.distance, m.km])
        begin += length
    return write_rows(path, RAVEN_COLUMNS, rows, delimiter="\t")
