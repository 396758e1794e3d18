"""Computing the acoustic indices of an atlas's recordings and storing them in it (needs scikit-maad).

Resumable like the atlas build: rows are appended in parts of :data:`PART` recordings and committed,
so a cancelled run keeps what it computed and the same call continues; only recordings without
indices are analysed (those added since the last run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.atlas.format import open_atlas
from engine.atlas.indices import IndicesAppender
from engine.atlas.writer import AtlasWriter
from engine.ecology.indices import IndexParameters, maad_version, recording_indices
from engine.ecology.names import INDEX_NAMES
from engine.ecology.table import hour_of_day, start_from_name
from engine.errors import UserInputError
from engine.progress import Job

log = logging.getLogger(__name__)

PART = 32
_KEEP = 20


@dataclass
class IndicesReport:
    """What :func:`add_atlas_indices` did."""

    atlas: Path
    added: int = 0
    total: int = 0
    skipped: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = f"{self.atlas}: acoustic indices of +{self.added} recordings ({self.total} in the atlas)"
        return text + (f"; {len(self.skipped)} without values" if self.skipped else "")


def add_atlas_indices(atlas_path: str | Path, params: IndexParameters | None = None, window_s: float | None = 60.0,
                      summary: str = "mean", job: Job | None = None) -> IndicesReport:
    """Compute the indices of the atlas's recordings that have none and store them (format version 2).

    A recording that cannot be analysed (unreadable, too short, too low a sample rate) gets NaN values
    and its reason is kept in atlas.json's ``indices.skipped_examples``.

    Raises:
        ConfigError: scikit-maad is not installed; AtlasError: not an atlas, or being written.
    """
    library = f"scikit-maad {maad_version()}"
    params = params or IndexParameters()
    job = job or Job()
    atlas = open_atlas(atlas_path)
    paths = list(atlas.recordings.paths)
    report = IndicesReport(atlas=Path(atlas_path), total=len(paths))
    meta = {"parameters": params.to_dict(), "library": library, "window_s": window_s, "summary": summary}
    with AtlasWriter(atlas_path, bundle=None, create=False) as writer:  # type: ignore[arg-type] - no embeddings
        appender = IndicesAppender(writer, list(INDEX_NAMES), meta)
        try:
            start = appender.rows
            for part in range(start, len(paths), PART):
                values, hours = [], []
                for i in range(part, min(part + PART, len(paths))):
                    job.check()
                    row, reason = _analyse(paths[i], params, window_s, summary)
                    if reason:
                        report.skipped.append(reason)
                        appender.entry["skipped"] += 1
                        if len(appender.entry["skipped_examples"]) < _KEEP:
                            appender.entry["skipped_examples"].append(reason)
                    values.append(row)
                    hours.append(_local_hour(atlas, i, paths[i]))
                    job.report(i + 1, len(paths), Path(paths[i]).name)
                appender.append(np.array(values, np.float64), np.array(hours, np.float64))
                report.added += len(values)
            appender.append(np.zeros((0, len(INDEX_NAMES))), np.zeros(0))  # commits the version for empty atlases
            _store_neighbours(writer, atlas, job)
        finally:
            appender.close()
    return report


def _local_hour(atlas, i: int, path: str) -> float:
    """A recording's local start hour: the campaign's (an AudioMoth names its files in UTC), else the name's."""
    times = getattr(atlas.recordings, "times", None)
    if times is not None and np.isfinite(times.hour[i]):
        return float(times.hour[i])
    return hour_of_day(start_from_name(path))


def _store_neighbours(writer: AtlasWriter, atlas, job: Job) -> None:
    """Every tile's nearest recordings for the maps' default k, stored so the app draws layers at once."""
    from engine.atlas.indices import read_neighbours, write_neighbours
    from engine.ecology.maps import DEFAULT_K, SoundscapePredictor

    fresh = open_atlas(atlas.path)
    if len(fresh.tiles) == 0 or len(fresh.recordings) == 0 or read_neighbours(fresh, DEFAULT_K) is not None:
        return
    job.report(0, None, "nearest recordings of every tile")
    idx, w = SoundscapePredictor(fresh, DEFAULT_K).neighbours()
    write_neighbours(writer, idx, w, DEFAULT_K)


def _analyse(path: str, params: IndexParameters, window_s: float | None, summary: str) -> tuple[list[float], str]:
    try:
        result = recording_indices(path, params, window_s)
    except UserInputError as err:
        log.warning("no indices: %s", err)
        return [float("nan")] * len(INDEX_NAMES), str(err)
    if result.skipped:
        return [float("nan")] * len(INDEX_NAMES), f"{path}: {result.skipped}"
    values = result.summary(summary)
    return [values[n] for n in INDEX_NAMES], ""
