"""The tables a user gives the scan: a sites table and a per-file table, and time zones (torch-free).

Sites table (CSV; ',' ';' or tab): ``site, longitude, latitude`` and optionally ``recorder`` (a serial or
file-name prefix), ``start``/``end`` (when that recorder stood at that site; ISO dates or times, local to
the site) and ``timezone`` (IANA name like Europe/Berlin, or an offset like +02:00). A file is matched to a
row by one of its folder names, its recorder serial or its file-name prefix.

Per-file table: ``path`` (relative to the recordings folder, or a bare file name), ``longitude``,
``latitude`` and optionally ``site`` and ``timezone``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import ConfigError, DatasetError

ALIASES = {"site": ("site", "name", "site_id", "site_name"),
           "longitude": ("longitude", "lon", "lng", "long", "x"),
           "latitude": ("latitude", "lat", "y"),
           "recorder": ("recorder", "serial", "device", "recorder_id"),
           "start": ("start", "deployed", "from"), "end": ("end", "retrieved", "to"),
           "timezone": ("timezone", "tz", "time_zone"), "path": ("path", "file", "filename")}
OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$")


@dataclass(frozen=True)
class SiteRow:
    """One row of the sites table; ``start``/``end`` are tz-aware (UTC) or None."""

    site: str
    lon: float
    lat: float
    recorder: str | None
    start: datetime | None
    end: datetime | None
    timezone: str | None
    row: int


@dataclass(frozen=True)
class FileRow:
    path: str
    lon: float
    lat: float
    site: str | None
    timezone: str | None


def parse_timezone(value: str, subject: str) -> tzinfo:
    """An IANA zone (Europe/Berlin), 'UTC', or a fixed offset ('+02:00', 'UTC-4').

    Raises:
        ConfigError: naming ``subject`` (the option or the table and row).
    """
    text = value.strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return UTC
    match = OFFSET.match(text)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes >= 60:
            raise ConfigError(subject, f"time zone offset {text!r} is impossible", "use e.g. +02:00")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(subject, f"unknown time zone {text!r}",
                          "use an IANA name like Europe/Berlin or America/Nassau, or an offset like +02:00") from None


def timezone_name(tz: tzinfo, moment: datetime) -> str:
    """The name written to the campaign: the IANA key, or the offset as '+02:00'."""
    if isinstance(tz, ZoneInfo):
        return tz.key
    offset = moment.astimezone(tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def read_table(path: Path, required: tuple[str, ...]) -> tuple[str, list[tuple[int, dict[str, str]]]]:
    """(delimiter, [(row number counting the header as 1, row)]) of a user's CSV table, columns renamed to
    their canonical names.

    Raises:
        DatasetError: missing file or required columns (named), or an unreadable file.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(path, "not found", "give the path of an existing CSV table") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(path, f"unreadable ({err})", "save it as UTF-8 CSV") from None
    first = text.splitlines()[0] if text.strip() else ""
    # Spreadsheets in many locales save CSV with ';' (the decimal separator being ','); count the candidates
    # in the header line rather than guess from the data, where ',' may be a decimal comma.
    delimiter = max((";", "\t", ","), key=lambda d: (first.count(d), d == ","))
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = next(reader, [])
    canonical = []
    for name in header:
        key = name.strip().lower()
        canonical.append(next((c for c, names in ALIASES.items() if key in names), key))
    missing = [c for c in required if c not in canonical]
    if missing:
        found = ", ".join(h.strip() for h in header) or "nothing"
        raise DatasetError(path, f"missing column(s) {', '.join(missing)} (found: {found}; delimiter "
                           f"{delimiter!r})", f"add a header line with {', '.join(required)}")
    rows = []
    for n, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        rows.append((n, {c: v.strip() for c, v in zip(canonical, values, strict=False)}))
    return delimiter, rows


def _coordinate(row: dict[str, str], path: Path, n: int, decimal_comma: bool) -> tuple[float, float]:
    texts = [row.get("longitude", ""), row.get("latitude", "")]
    if decimal_comma:
        texts = [t.replace(",", ".") for t in texts]
    try:
        lon, lat = float(texts[0]), float(texts[1])
    except ValueError:
        raise DatasetError(path, f"row {n}: longitude/latitude {texts[0]!r}, {texts[1]!r} are not numbers",
                           "write decimal degrees (WGS 84), e.g. 13.4050, 52.5200") from None
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0) or lon != lon or lat != lat:
        raise DatasetError(path, f"row {n}: impossible coordinate longitude {lon:g}, latitude {lat:g}",
                           "write decimal degrees (WGS 84): longitude in -180..180, latitude in -90..90 "
                           "(are the columns swapped or in a projected CRS?)")
    return lon, lat


def load_sites(path: Path, default_tz: str | None) -> list[SiteRow]:
    """Read and check a sites table.

    Raises:
        DatasetError: a missing column, an impossible coordinate or time (naming the row).
        ConfigError: an unknown time zone (naming the row).
    """
    path = Path(path)
    delimiter, rows = read_table(path, ("site", "longitude", "latitude"))
    out = []
    for n, row in rows:
        if not row.get("site"):
            raise DatasetError(path, f"row {n}: empty site name", "give every row a site name")
        lon, lat = _coordinate(row, path, n, delimiter == ";")
        tz_text = row.get("timezone") or default_tz
        tz = parse_timezone(tz_text, f"{path} row {n}") if tz_text else None
        start, end = (_moment(row.get(k), tz, path, n, k) for k in ("start", "end"))
        if start and end and end <= start:
            raise DatasetError(path, f"row {n}: end {row['end']} is not after start {row['start']}",
                               "fix the deployment dates")
        out.append(SiteRow(row["site"], lon, lat, row.get("recorder") or None, start, end,
                           row.get("timezone") or None, n))
    return out


def load_files_table(path: Path) -> dict[str, FileRow]:
    """Per-file positions keyed by the path as given ('/'-separated) and by the bare file name."""
    path = Path(path)
    delimiter, rows = read_table(path, ("path", "longitude", "latitude"))
    out: dict[str, FileRow] = {}
    decimal_comma = delimiter == ";"
    for n, row in rows:
        lon, lat = _coordinate(row, path, n, decimal_comma)
        if row.get("timezone"):
            parse_timezone(row["timezone"], f"{path} row {n}")
        rel = row["path"].replace("\\", "/").strip("/")
        entry = FileRow(rel, lon, lat, row.get("site") or None, row.get("timezone") or None)
        out[rel] = entry
        out.setdefault(rel.rsplit("/", 1)[-1], entry)
    return out


def _moment(text: str | None, tz: tzinfo | None, path: Path, n: int, column: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DatasetError(path, f"row {n}: {column} {text!r} is not a date or time",
                           "write ISO dates like 2019-05-22 or 2019-05-22T06:30") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz or UTC)
    return moment.astimezone(UTC)
