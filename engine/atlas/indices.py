"""The recordings' acoustic indices stored in an atlas (format version 2), numpy only.

``recordings/indices.f8`` holds (R, K) float64 rows for the first R recordings, ``recordings/hour.f8`` (R,)
the local hour of day each recording starts at (NaN when unknown); atlas.json ``"indices"`` holds
``names`` (the K columns), ``rows`` (R), ``parameters`` (scikit-maad's), ``library``, ``window_s``,
``summary``, ``skipped`` (count) and ``skipped_examples``. Recordings added after the indices were
computed have none until indices are computed again (``soundscape-engine atlas indices``), which only
adds the missing rows. The values are computed by :mod:`engine.ecology`; the app only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.atlas.format import _map
from engine.atlas.writer import _Appender

INDICES_FILE = "recordings/indices.f8"
HOUR_FILE = "recordings/hour.f8"


@dataclass(frozen=True)
class AtlasIndices:
    """Acoustic indices of an atlas's recordings: ``values`` (M, K) with NaN for an undefined value or a
    recording not analysed yet (``computed`` False), ``hour`` (M,) local start hour or NaN."""

    names: list[str]
    values: np.ndarray
    hour: np.ndarray
    computed: np.ndarray
    parameters: dict[str, Any]
    library: str
    window_s: float | None
    summary: str

    def column(self, name: str) -> np.ndarray:
        """The (M,) values of one index (KeyError names the known ones)."""
        if name not in self.names:
            raise KeyError(f"{name!r} is not among the atlas's indices ({', '.join(self.names)})")
        return self.values[:, self.names.index(name)]


def read_indices(atlas: Any) -> AtlasIndices | None:
    """The indices of an opened :class:`engine.atlas.Atlas`, or None when it has none (version 1)."""
    entry = atlas.manifest.get("indices")
    if not entry:
        return None
    m, names = len(atlas.recordings), list(entry["names"])
    rows = min(int(entry["rows"]), m)
    values = np.full((m, len(names)), np.nan)
    hour = np.full(m, np.nan)
    if rows:
        values[:rows] = _map(atlas.path / INDICES_FILE, "<f8", (rows, len(names)))
        hour[:rows] = _map(atlas.path / HOUR_FILE, "<f8", (rows,))
    computed = np.zeros(m, bool)
    computed[:rows] = True
    return AtlasIndices(names=names, values=values, hour=hour, computed=computed,
                        parameters=dict(entry.get("parameters", {})), library=entry.get("library", ""),
                        window_s=entry.get("window_s"), summary=entry.get("summary", "mean"))


class IndicesAppender:
    """Appends index rows to an atlas opened for writing (an :class:`engine.atlas.writer.AtlasWriter`,
    whose lock and atomic commit it uses)."""

    def __init__(self, writer: Any, names: list[str], meta: dict[str, Any]) -> None:
        self.writer = writer
        m = writer.manifest
        entry = m.get("indices")
        if entry and (list(entry["names"]) != list(names) or entry.get("parameters") != meta.get("parameters")
                      or entry.get("window_s") != meta.get("window_s") or entry.get("summary") != meta.get("summary")):
            entry = None  # other indices or parameters: computed again from the first recording
        if entry is None:
            entry = {"names": list(names), "rows": 0, "skipped": 0, "skipped_examples": [], **meta}
            m["indices"] = entry
        m["format_version"] = max(int(m.get("format_version", 1)), 2)
        self.entry = entry
        k = len(names)
        self._values = _Appender(writer.root / INDICES_FILE, int(entry["rows"]) * k * 8)
        self._hour = _Appender(writer.root / HOUR_FILE, int(entry["rows"]) * 8)

    @property
    def rows(self) -> int:
        return int(self.entry["rows"])

    def append(self, values: np.ndarray, hour: np.ndarray) -> None:
        """Append and sync rows, then commit atlas.json (which makes them count)."""
        values = np.ascontiguousarray(values, "<f8").reshape(-1, len(self.entry["names"]))
        if len(values):
            self._values.write(values.tobytes())
            self._hour.write(np.ascontiguousarray(hour, "<f8").tobytes())
            self._values.sync()
            self._hour.sync()
            self.entry["rows"] += len(values)
        self.writer.commit()

    def close(self) -> None:
        self._values.close()
        self._hour.close()
