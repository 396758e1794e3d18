"""The recordings' acoustic indices stored in an atlas (format version 2), numpy only.

``recordings/indices.f8`` holds (R, K) float64 rows for the first R recordings, ``recordings/hour.f8`` (R,)
the local hour of day each recording starts at (NaN when unknown); atlas.json ``"indices"`` holds
``names`` (the K columns), ``rows`` (R), ``parameters`` (scikit-maad's), ``library``, ``window_s``,
``summary``, ``skipped`` (count) and ``skipped_examples``. Recordings added after the indices were
computed have none until indices are computed again (``soundscape-engine atlas indices``), which only
adds the missing rows. The values are computed by :mod:`engine.ecology`; the app only reads them. Reading is
:func:`engine.atlas.format.read_indices` (``Atlas.indices``); this module appends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.atlas.format import (
    HOUR_FILE,
    INDICES_FILE,
    NEIGHBOURS_FILE,
    WEIGHTS_FILE,
    AtlasIndices,
    _map,
    read_indices,
)
from engine.atlas.writer import _Appender

__all__ = ["HOUR_FILE", "INDICES_FILE", "AtlasIndices", "IndicesAppender", "read_indices", "read_neighbours",
           "write_neighbours"]


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


def write_neighbours(writer: Any, neighbours: np.ndarray, weights: np.ndarray, k: int) -> None:
    """Store every tile's ``k`` nearest recordings in embedding space and their weights (what a predicted
    map layer needs), so an opened atlas draws a layer without searching again. Valid while the
    generation and the tile and recording counts stay as recorded in atlas.json ``indices.neighbours``."""
    from engine.files import atomic_write_bytes

    m = writer.manifest
    g = int(m["generation"])
    idx = np.ascontiguousarray(neighbours, "<i4")
    w = np.ascontiguousarray(weights, "<f4")
    atomic_write_bytes(writer.root / NEIGHBOURS_FILE.format(g=g), lambda f: f.write(idx.tobytes()))
    atomic_write_bytes(writer.root / WEIGHTS_FILE.format(g=g), lambda f: f.write(w.tobytes()))
    m["indices"]["neighbours"] = {"k": int(idx.shape[1]) if idx.ndim == 2 else int(k), "requested_k": int(k),
                                  "generation": g, "tiles": int(m["tiles"]["count"]),
                                  "recordings": int(m["recordings"]["count"])}
    writer.commit()


def read_neighbours(atlas: Any, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The stored (N, k) neighbours and weights of an opened atlas when they are still valid for it and
    were stored for this ``k``; else None."""
    entry = (atlas.manifest.get("indices") or {}).get("neighbours")
    if not entry or entry.get("requested_k") != k or entry.get("generation") != atlas.generation \
            or entry.get("tiles") != len(atlas.tiles) or entry.get("recordings") != len(atlas.recordings):
        return None
    shape = (len(atlas.tiles), int(entry["k"]))
    try:
        idx = _map(atlas.path / NEIGHBOURS_FILE.format(g=atlas.generation), "<i4", shape)
        w = _map(atlas.path / WEIGHTS_FILE.format(g=atlas.generation), "<f4", shape)
    except Exception:  # noqa: BLE001 - a missing or short cache is recomputed, never an error
        return None
    return np.asarray(idx, np.int64), np.asarray(w, np.float64)
