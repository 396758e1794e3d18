"""An atlas's imagery sources on disk: one JSON line per change, so that a commit costs what changed, not
what the atlas holds (format version 3).

A national orthophoto comes as tens of thousands of GeoTIFFs. Version 2 kept every source's entry inside
atlas.json, which is rewritten at every commit (at least one per source), so a build from N files wrote
O(N^2) bytes: 30% of a 1,000-file build, and most of a 10,000-file one. Here the entries live in
``sources.<k>.jsonl``: each commit appends the entries that changed since the last one (each line a whole
entry; the last line of an index wins) and atlas.json records how many bytes of that file count::

    "source_log": {"file": "sources.0.jsonl", "bytes": 123456, "count": 1000}

Bytes past the counted ones (a commit cut short by a crash) are cut off by the next writer, as for the other
append-only files. When superseded lines make up most of the file, the writer writes the current entries
to ``sources.<k+1>.jsonl``, and the same atlas.json commit switches to it; the old file is removed after
that commit (or, after a crash, by the next writer, which removes every log file atlas.json does not name).

In memory nothing changes: ``manifest["sources"]`` is the list of entries, as in version 2, and readers
never see the log. Entries the writer hands out note their own changes (:class:`SourceEntry`), so the
build code simply assigns to them.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from engine.errors import AtlasError
from engine.files import atomic_write_bytes, json_safe

log = logging.getLogger(__name__)

LOG_KEY = "source_log"
LOG_NAME = "sources.{k}.jsonl"
_LOG_FILE = re.compile(r"^sources\.(\d+)\.jsonl$")
# Rewrite the log when it is this many times the size of the current entries (and at least this large):
# the log then stays within a small factor of version 2's atlas.json, and rewrites are rare.
COMPACT_FACTOR = 3
COMPACT_MIN_BYTES = 1 << 20


def _line(entry: dict[str, Any]) -> bytes:
    """One entry as a line (the C encoder; NaN replaced only when there is one)."""
    try:
        text = json.dumps(entry, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(json_safe(entry), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def read_source_log(root: Path, spec: Any, damaged_fix: str) -> list[dict[str, Any]]:
    """The entries a version-3 atlas.json's ``source_log`` names, in index order (plain dicts).

    Raises:
        AtlasError: the file is missing, shorter than counted, or its lines are not the counted entries.
    """
    try:
        name, size, count = str(spec["file"]), int(spec["bytes"]), int(spec["count"])
    except (KeyError, TypeError, ValueError):
        raise AtlasError(root / "atlas.json", f"malformed {LOG_KEY!r} entry", damaged_fix) from None
    if not _LOG_FILE.match(name) or size < 0 or count < 0:
        raise AtlasError(root / "atlas.json", f"malformed {LOG_KEY!r} entry ({name!r}, {size}, {count})", damaged_fix)
    path = root / name
    if size == 0:
        data = b""
    else:
        try:
            with open(path, "rb") as f:
                data = f.read(size)
        except OSError as err:
            raise AtlasError(path, f"unreadable ({err.strerror or type(err).__name__})", damaged_fix) from None
    if len(data) < size:
        raise AtlasError(path, f"holds {len(data)} bytes, the atlas counts {size}", damaged_fix)
    entries: dict[int, dict[str, Any]] = {}
    try:
        for line in data.splitlines():
            entry = json.loads(line)
            entries[int(entry["index"])] = entry
    except (ValueError, KeyError, TypeError) as err:
        raise AtlasError(path, f"malformed ({type(err).__name__})", damaged_fix) from None
    if sorted(entries) != list(range(count)):
        lacking = count - len(set(entries) & set(range(count)))
        raise AtlasError(path, f"lacks {lacking} of the {count} sources the atlas counts" if lacking else
                         f"lists {len(entries) - count} sources more than the atlas counts ({count})", damaged_fix)
    return [entries[k] for k in range(count)]


class SourceEntry(dict):
    """A source's entry that tells its log when a key is assigned (``entry["tiles"] += k`` included)."""

    _log: SourceLog | None = None

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if self._log is not None:
            self._log.changed(self)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        if self._log is not None:
            self._log.changed(self)

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(*args, **kwargs)
        if self._log is not None:
            self._log.changed(self)

    def __reduce__(self) -> Any:  # pickled (e.g. to a Dask worker) as the plain dict it is
        return (dict, (dict(self),))


class SourceLog:
    """The writer's side: the entries (``entries``, the manifest's ``sources`` list), what changed since the
    last commit, and the file the changes are appended to."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        spec = manifest.get(LOG_KEY)
        self.by_path: dict[str, SourceEntry] = {}
        self.entries: list[dict[str, Any]] = manifest.setdefault("sources", [])
        for k, entry in enumerate(self.entries):
            self.entries[k] = self._track(entry)
        self._line_bytes: dict[int, int] = {}
        self._live_bytes = 0
        self._dirty: dict[int, dict[str, Any]] = {}
        self._old: Path | None = None
        if spec is None:  # new, or a version-2 atlas: the first commit writes every entry
            self.name, self.size, self.logged = LOG_NAME.format(k=0), 0, 0
            self._dirty = {int(e["index"]): e for e in self.entries}
        else:
            self.name, self.size, self.logged = str(spec["file"]), int(spec["bytes"]), int(spec["count"])
            for entry in self.entries:
                self._count_line(entry)
        self._remove_unnamed_logs()
        path = self.root / self.name
        if path.is_file() and path.stat().st_size > self.size:
            os.truncate(path, self.size)  # a commit cut short: its lines never counted

    def _track(self, entry: dict[str, Any]) -> SourceEntry:
        tracked = entry if isinstance(entry, SourceEntry) else SourceEntry(entry)
        tracked._log = self
        if "path" in tracked:
            self.by_path[str(tracked["path"])] = tracked
        return tracked

    def _count_line(self, entry: dict[str, Any]) -> int:
        """Remember the size of the entry's current line (for deciding when to rewrite the log)."""
        n = len(_line(entry))
        k = int(entry["index"])
        self._live_bytes += n - self._line_bytes.get(k, 0)
        self._line_bytes[k] = n
        return n

    def _remove_unnamed_logs(self) -> None:
        """Log files atlas.json does not name: a rewrite cut short, or the old one after a rewrite."""
        for path in self.root.glob("sources.*.jsonl"):
            if _LOG_FILE.match(path.name) and path.name != self.name:
                try:
                    path.unlink()
                except OSError as err:
                    log.warning("could not remove the unused %s (%s)", path, err)

    def add(self, entry: dict[str, Any]) -> SourceEntry:
        """Append a new source's entry (its ``index`` must be the next one); it is written at the next commit."""
        if int(entry["index"]) != len(self.entries):
            raise ValueError(f"source index {entry['index']} given, {len(self.entries)} is next")
        tracked = self._track(entry)
        self.entries.append(tracked)
        self._dirty[int(tracked["index"])] = tracked
        return tracked

    def changed(self, entry: SourceEntry) -> None:
        self._dirty[int(entry["index"])] = entry

    def flush(self) -> dict[str, Any]:
        """Append the changed entries and sync them (or rewrite the log when it is mostly superseded lines);
        returns the ``source_log`` spec for the atlas.json commit that makes them count."""
        # Entries appended to the list directly (as tests and benches do) are taken in as new ones.
        for k in range(self.logged, len(self.entries)):
            if not isinstance(self.entries[k], SourceEntry) or self.entries[k]._log is not self:
                self.entries[k] = self._track(self.entries[k])
            self._dirty[k] = self.entries[k]
        if self._dirty:
            lines = [_line(self._dirty[k]) for k in sorted(self._dirty)]
            for k in self._dirty:
                self._live_bytes -= self._line_bytes.pop(k, 0)
            for k, line in zip(sorted(self._dirty), lines, strict=True):
                self._line_bytes[k] = len(line)
                self._live_bytes += len(line)
            data = b"".join(lines)
            if self.size + len(data) > max(COMPACT_FACTOR * self._live_bytes, COMPACT_MIN_BYTES):
                self._rewrite()
            else:
                self._append(data)
            self._dirty = {}
        self.logged = len(self.entries)
        return {"file": self.name, "bytes": self.size, "count": self.logged}

    def _append(self, data: bytes) -> None:
        from engine.files import disk_full_error, is_disk_full

        path = self.root / self.name
        try:
            with open(path, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            if is_disk_full(err):
                raise disk_full_error(path, len(data)) from err
            raise
        self.size += len(data)

    def _rewrite(self) -> None:
        """Write every entry's current line to the next log file; the commit switches to it."""
        k = int(_LOG_FILE.match(self.name).group(1)) + 1  # type: ignore[union-attr]
        data = b"".join(_line(e) for e in self.entries)
        name = LOG_NAME.format(k=k)
        atomic_write_bytes(self.root / name, lambda f: f.write(data))
        self._old = self.root / self.name
        self.name, self.size = name, len(data)

    def committed(self) -> None:
        """After atlas.json names the new log: the old one is no longer read."""
        if self._old is not None:
            self._old.unlink(missing_ok=True)
            self._old = None


def write_source_log(root: Path, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Write ``entries`` as a new atlas's first log (for atlases made without a writer, such as the
    synthetic ones of the benches); returns the ``source_log`` spec for atlas.json."""
    data = b"".join(_line(e) for e in entries)
    name = LOG_NAME.format(k=0)
    atomic_write_bytes(root / name, lambda f: f.write(data))
    return {"file": name, "bytes": len(data), "count": len(entries)}
