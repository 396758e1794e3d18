"""When an atlas's recordings were made, and limiting queries to an hour-of-day or a date range
(torch-free, numpy and the standard library only).

A recording added from a campaign folder (``atlas build --recordings CAMPAIGN``) carries in
``recordings/meta.jsonl``: ``site``, ``recorder``, ``start_utc`` (ISO 8601 with ``Z``), ``start_local``
(ISO 8601 with its offset), ``timezone`` and ``hour`` (the local hour of day of its start, fractional).
Recordings from pair tables have none of these keys; they never match a time filter.

Hour ranges are half-open in local time: ``4-8`` is from 04:00 up to (not including) 08:00; ``21-4``
wraps midnight (21:00 to 04:00). Date ranges are inclusive local dates: ``2019-05-01..2019-05-31`` or one
date. A recording matches by its start.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError

_HOURS = re.compile(r"^\s*(\d{1,2}(?:\.\d+)?)\s*-\s*(\d{1,2}(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class TimeFilter:
    """Which recordings a query may use: a local hour-of-day range and/or a local date range."""

    hours: tuple[float, float] | None = None  # (from, to) in [0, 24]; from > to wraps midnight
    dates: tuple[dt.date, dt.date] | None = None  # inclusive

    @property
    def active(self) -> bool:
        return self.hours is not None or self.dates is not None

    def describe(self) -> str:
        parts = []
        if self.hours is not None:
            parts.append(f"local hours {_hh(self.hours[0])}-{_hh(self.hours[1])}")
        if self.dates is not None:
            parts.append(f"dates {self.dates[0].isoformat()}..{self.dates[1].isoformat()}")
        return ", ".join(parts) or "all times"


def _hh(h: float) -> str:
    return f"{int(h):02d}:{round((h % 1) * 60):02d}"


def parse_hours(text: str, option: str = "--hours") -> tuple[float, float]:
    """``"4-8"`` -> (4.0, 8.0); ``"21-4"`` wraps midnight. Raises :class:`ConfigError` (one line)."""
    match = _HOURS.match(text or "")
    if not match:
        raise ConfigError(option, f"{text!r} is not an hour range", "write FROM-TO in local hours, e.g. 4-8 or 21-4")
    start, end = float(match.group(1)), float(match.group(2))
    if not (0 <= start <= 24 and 0 <= end <= 24):
        raise ConfigError(option, f"{text!r} has an hour outside 0-24", "write hours from 0 to 24, e.g. 4-8")
    if start == end:
        raise ConfigError(option, f"{text!r} is an empty range", "give two different hours, e.g. 4-8 (or leave "
                          "the option out for all hours)")
    return start, end


def parse_dates(text: str, option: str = "--dates") -> tuple[dt.date, dt.date]:
    """``"2019-05-01..2019-05-31"`` (inclusive) or one date. Raises :class:`ConfigError` (one line)."""
    first, sep, last = (text or "").strip().partition("..")
    try:
        start = dt.date.fromisoformat(first.strip())
        end = dt.date.fromisoformat(last.strip()) if sep else start
    except ValueError:
        raise ConfigError(option, f"{text!r} is not a date range", "write FIRST..LAST, e.g. "
                          "2019-05-01..2019-05-31, or one date") from None
    if end < start:
        raise ConfigError(option, f"{text!r} ends before it starts", "write the earlier date first")
    return start, end


def time_filter(hours: str | None = None, dates: str | None = None) -> TimeFilter:
    """A :class:`TimeFilter` from the CLI's texts (None: no limit)."""
    return TimeFilter(hours=parse_hours(hours) if hours else None, dates=parse_dates(dates) if dates else None)


def in_hours(hour: np.ndarray, hours: tuple[float, float]) -> np.ndarray:
    """Which local hours (NaN: unknown, never in) fall in the half-open, possibly wrapping range."""
    start, end = hours[0] % 24, hours[1] % 24 if hours[1] != 24 else 24.0
    h = np.asarray(hour, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        inside = (h >= start) & (h < end) if start < end else (h >= start) | (h < end)
    return inside & np.isfinite(h)


@dataclass(frozen=True)
class RecordingTimes:
    """The recordings' sites and times, aligned with :class:`engine.atlas.AtlasRecordings` (None or NaN
    where a recording has none)."""

    sites: list[str | None]
    recorders: list[str | None]
    start_utc: list[str | None]
    start_local: list[str | None]
    hour: np.ndarray  # (M,) float64 local hour of day, NaN when unknown
    local_date: list[dt.date | None]

    @property
    def known(self) -> int:
        return int(np.isfinite(self.hour).sum())

    def label(self, i: int) -> str:
        """``"site-03 2024-06-15 07:16 (+02:00)"``, or "" when the recording has no time."""
        local = self.start_local[i]
        if not local:
            return self.sites[i] or ""
        moment = dt.datetime.fromisoformat(local)
        offset = moment.strftime("%z")
        text = moment.strftime("%Y-%m-%d %H:%M") + (f" ({offset[:3]}:{offset[3:]})" if offset else "")
        return f"{self.sites[i]} {text}" if self.sites[i] else text

    def mask(self, where: TimeFilter | None) -> np.ndarray | None:
        """Which recordings match ``where`` (None when there is no limit)."""
        if where is None or not where.active:
            return None
        keep = np.isfinite(self.hour)
        if where.hours is not None:
            keep &= in_hours(self.hour, where.hours)
        if where.dates is not None:
            first, last = where.dates
            keep &= np.array([d is not None and first <= d <= last for d in self.local_date], bool)
        return keep


def times_from_meta(rows: list[dict[str, Any]]) -> RecordingTimes:
    """Read the time keys of meta.jsonl rows (see the module docstring)."""
    local = [r.get("start_local") for r in rows]
    dates: list[dt.date | None] = []
    for text in local:
        try:
            dates.append(dt.datetime.fromisoformat(text).date() if text else None)
        except ValueError:
            dates.append(None)
    hour = np.array([_float(r.get("hour")) for r in rows], np.float64)
    return RecordingTimes(sites=[r.get("site") for r in rows], recorders=[r.get("recorder") for r in rows],
                          start_utc=[r.get("start_utc") for r in rows], start_local=local, hour=hour,
                          local_date=dates)


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def local_hour(moment: dt.datetime) -> float:
    """The fractional hour of day of a (local) time."""
    return moment.hour + moment.minute / 60 + moment.second / 3600


def campaign_time_meta(recording: Any) -> dict[str, Any]:
    """The meta.jsonl keys of a :class:`engine.campaign.CampaignRecording`."""
    from engine.campaign.table import format_local, format_utc

    return {"site": recording.site, "recorder": recording.recorder, "start_utc": format_utc(recording.start_utc),
            "start_local": format_local(recording.start_local), "timezone": recording.timezone,
            "hour": round(local_hour(recording.start_local), 6)}


def campaign_id(recording: Any, recordings_root: Path) -> str:
    """A campaign recording's id in an atlas: its path relative to the recordings folder."""
    path = Path(recording.path)
    try:
        return path.relative_to(recordings_root).as_posix()
    except ValueError:
        return path.as_posix()
