"""The two questions, asked of a :class:`~app.services.project.Project`: what does this tile sound
like (its best-matching and nearest recordings), and where could this sound have been recorded (a
score for every tile). Thin wrappers over ``engine.atlas.query`` that add the display spectrogram
and progress/cancel for the app."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soxr

from app.services.audio_check import AudioLevels, LevelAccumulator, measure
from app.services.audio_io import trim_silent_edges
from app.services.project import Project
from app.state import SoundQueryResult, TileSelection
from engine.audio import StreamingLogMel, iter_audio_blocks, normalise, resample
from engine.errors import AudioFileError
from engine.progress import Job

if TYPE_CHECKING:
    from app.services.project import Project
    from engine.audio import FrontEndConfig

TOP_TILES = 24
TOP_RECORDINGS = 10


def select_tile(project: Project, lon: float, lat: float, k: int = TOP_RECORDINGS,
                hours: tuple[float, float] | None = None) -> TileSelection | None:
    """The tile under (lon, lat) and its predicted soundscape, or None when no tile is there."""
    index = tile_at(project, lon, lat)
    if index is None:
        return None
    return tile_selection(project, int(index), k, hours)


def tile_at(project: Project, lon: float, lat: float) -> int | None:
    """The index of the tile under (lon, lat); None there is none (or the point is off the Earth,
    as the map's empty margins can be)."""
    from engine.atlas.query import locate_tile
    from engine.geo import wrap_lon

    if not (-540.0 <= lon <= 540.0 and -90.0 <= lat <= 90.0):
        return None
    # Past the map's east or west edge (an image across the antimeridian is drawn there) is the same place.
    index = locate_tile(project.atlas, float(wrap_lon(lon)), lat)
    return None if index is None else int(index)


def tile_selection(project: Project, index: int, k: int = TOP_RECORDINGS,
                   hours: tuple[float, float] | None = None) -> TileSelection:
    """Tile ``index``'s best-matching recordings (by embedding) and its nearest ones (by km), only those
    that started in the local ``hours`` range (from, to; wrapping midnight when from > to) if given."""
    from engine.atlas.query import tile_soundscape
    from engine.atlas.times import TimeFilter

    tiles = project.atlas.tiles
    best, nearest = tile_soundscape(project.atlas, index, k, where=TimeFilter(hours=hours) if hours else None)
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
           job: Job | None, levels: AudioLevels | None = None) -> SoundQueryResult:
    from engine.atlas.query import sound_query

    if levels is not None and levels.silent:  # nothing to search with: no scores, no heat map, no match
        empty = np.zeros(0, np.float32)
        return SoundQueryResult(source=source, log_mel_db=log_mel_db, seconds=seconds, scores=empty,
                                distances=empty, top=[], levels=levels)
    cfg = project.bundle.front_end
    if job is not None:
        job.check()
        job.report(1, 2, "embedding")
    embedding = project.encoders.embed_log_mel(normalise(log_mel_db, cfg))
    if job is not None:
        job.check()
    q = sound_query(project.atlas, embedding, k)
    return SoundQueryResult(source=source, log_mel_db=log_mel_db, seconds=seconds,
                            scores=np.asarray(q.scores), distances=np.asarray(q.distances), top=list(q.top),
                            levels=levels)


def _measured_and_resampled(blocks: Iterator[np.ndarray], in_rate: int, out_rate: int, quality: str,
                            levels: LevelAccumulator) -> Iterator[np.ndarray]:
    """Measure each block at the file's own rate (resampling would smooth a clipped waveform's flat
    tops), then resample it as ``iter_audio_blocks`` would (one stream, the last block marked last)."""
    stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32",
                                                                  quality=quality)
    held: np.ndarray | None = None
    for block in blocks:
        levels.add(block)
        if held is not None:
            out = held if stream is None else stream.resample_chunk(held, last=False)
            if out.size:
                yield out
        held = block
    if held is not None or stream is not None:
        block = held if held is not None else np.zeros(0, np.float32)
        out = block if stream is None else stream.resample_chunk(block, last=True)
        if out.size:
            yield out


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
    levels = LevelAccumulator()
    blocks = _measured_and_resampled(iter_audio_blocks(path, None), int(info.sample_rate), cfg.sample_rate,
                                     cfg.resample_quality, levels)
    mel, seconds = _stream_log_mel(blocks, cfg, job, total, str(path))
    return _query(project, mel, seconds, str(path), k, job, levels.levels())


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
    levels = measure(samples)
    samples = trim_silent_edges(samples, rate)
    y = resample(samples, rate, cfg.sample_rate, cfg.resample_quality)
    mel, seconds = _stream_log_mel([y], cfg, job, y.size, source)
    return _query(project, mel, seconds, source, k, job, levels)
