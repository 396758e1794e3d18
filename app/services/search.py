"""The two questions, asked of a :class:`~app.services.project.Project`: what does this tile sound
like (its best-matching and nearest recordings), and where could this sound have been recorded (a
score for every tile). Thin wrappers over ``engine.atlas.query`` that add the display spectrogram
and progress/cancel for the app."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.services.audio_io import trim_silent_edges
from app.state import SoundQueryResult, TileSelection
from engine.audio import StreamingLogMel, iter_audio_blocks, normalise, resample
from engine.errors import AudioFileError
from engine.progress import Job

if TYPE_CHECKING:
    from app.services.project import Project
    from engine.audio import FrontEndConfig

TOP_TILES = 24
TOP_RECORDINGS = 10


def select_tile(project: Project, lon: float, lat: float, k: int = TOP_RECORDINGS) -> TileSelection | None:
    """The tile under (lon, lat) and its predicted soundscape, or None when no tile is there."""
    index = tile_at(project, lon, lat)
    if index is None:
        return None
    return tile_selection(project, int(index), k)


def tile_at(project: Project, lon: float, lat: float) -> int | None:
    """The index of the tile under (lon, lat); None there is none (or the point is off the Earth,
    as the map's empty margins can be)."""
    from engine.atlas.query import locate_tile

    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        return None
    index = locate_tile(project.atlas, lon, lat)
    return None if index is None else int(index)


def tile_selection(project: Project, index: int, k: int = TOP_RECORDINGS) -> TileSelection:
    """Tile ``index``'s best-matching recordings (by embedding) and its nearest ones (by km)."""
    from engine.atlas.query import tile_soundscape

    tiles = project.atlas.tiles
    best, nearest = tile_soundscape(project.atlas, index, k)
    return TileSelection(index=index, tile_id=int(tiles.ids[index]), lon=float(tiles.lon[index]),
                         lat=float(tiles.lat[index]), best=list(best), nearest=list(nearest))


def best_recording_title(project: Project, index: int) -> str | None:
    """The title of tile ``index``'s best-matching recording (for the hover tooltip)."""
    from engine.atlas.query import tile_soundscape

    if len(project.atlas.recordings.ids) == 0:
        return None
    best, _ = tile_soundscape(project.atlas, index, 1)
    return str(best[0].title) if best else None


def _stream_log_mel(blocks: Iterable[np.ndarray], cfg: FrontEndConfig, job: Job | None, total_samples: int | None,
                    source: str) -> tuple[np.ndarray, float]:
    stream = StreamingLogMel(cfg)
    parts, seen = [], 0
    for block in blocks:
        if job is not None:
            job.check()
            job.report(seen, total_samples, "reading audio")
        parts.append(stream.push(block))
        seen += block.size
    parts.append(stream.finish())
    seconds = seen / cfg.sample_rate
    if seconds < cfg.min_seconds:
        raise AudioFileError(source, f"clip too short ({seconds:.2f} s)",
                             f"use a recording of at least {cfg.min_seconds:g} s")
    return np.concatenate(parts, axis=1), seconds


def _query(project: Project, log_mel_db: np.ndarray, seconds: float, source: str, k: int,
           job: Job | None) -> SoundQueryResult:
    from engine.atlas.query import sound_query

    cfg = project.bundle.front_end
    if job is not None:
        job.check()
        job.report(1, 2, "embedding")
    embedding = project.encoders.embed_log_mel(normalise(log_mel_db, cfg))
    if job is not None:
        job.check()
    q = sound_query(project.atlas, embedding, k)
    return SoundQueryResult(source=source, log_mel_db=log_mel_db, seconds=seconds,
                            scores=np.asarray(q.scores), distances=np.asarray(q.distances), top=list(q.top))


def query_audio_file(project: Project, path: str | Path, k: int = TOP_TILES, job: Job | None = None) -> SoundQueryResult:
    """Embed an audio file (any length, streamed) and score every tile against it.

    Raises:
        AudioFileError: unreadable, empty, truncated or too short.
        Cancelled: the job was cancelled.
    """
    from engine.audio import probe_audio

    cfg = project.bundle.front_end
    info = probe_audio(path)
    total = int(info.frames * cfg.sample_rate / max(1, info.sample_rate))
    blocks = iter_audio_blocks(path, cfg.sample_rate, quality=cfg.resample_quality)
    mel, seconds = _stream_log_mel(blocks, cfg, job, total, str(path))
    return _query(project, mel, seconds, str(path), k, job)


def query_samples(project: Project, samples: np.ndarray, rate: int, k: int = TOP_TILES, job: Job | None = None,
                  source: str = "microphone") -> SoundQueryResult:
    """Embed an in-memory clip (a microphone recording) and score every tile against it.

    The clip's digitally silent edges are trimmed first (see
    :func:`~app.services.audio_io.trim_silent_edges`); then it takes the file path's front-end.

    Raises:
        AudioFileError: NaN samples or a clip too short.
    """
    cfg = project.bundle.front_end
    samples = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(samples).all():
        raise AudioFileError(source, "contains NaN or infinite samples", "record the clip again")
    samples = trim_silent_edges(samples, rate)
    y = resample(samples, rate, cfg.sample_rate, cfg.resample_quality)
    mel, seconds = _stream_log_mel([y], cfg, job, y.size, source)
    return _query(project, mel, seconds, source, k, job)
