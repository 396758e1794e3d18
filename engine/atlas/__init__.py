"""The atlas: tile and recording embeddings with their places, built with one model bundle
(torch-free). See :mod:`engine.atlas.format` for the files and ``docs/ARCHITECTURE.md`` for the API."""

from engine.atlas.build import (
    AtlasBuildError,
    BuildReport,
    add_imagery,
    add_recordings,
    build_atlas,
    reembed_atlas,
)
from engine.atlas.format import Atlas, AtlasRecordings, AtlasTiles, SourceInfo, open_atlas
from engine.atlas.query import (
    RecordingMatch,
    SoundQuery,
    TileMatch,
    locate_tile,
    nearest_recordings,
    sound_query,
    tile_soundscape,
)

__all__ = [
    "Atlas", "AtlasBuildError", "AtlasRecordings", "AtlasTiles", "BuildReport", "RecordingMatch", "SoundQuery",
    "SourceInfo", "TileMatch", "add_imagery", "add_recordings", "build_atlas", "locate_tile",
    "nearest_recordings", "open_atlas", "reembed_atlas", "sound_query", "tile_soundscape",
]
