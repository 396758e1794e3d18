"""The atlas: tile and recording embeddings with their places, built with one model bundle
(torch-free). The files and :class:`~engine.atlas.format.Atlas` are :mod:`engine.atlas.format`, the questions
it answers :mod:`engine.atlas.query`, building :mod:`engine.atlas.build` and :mod:`engine.atlas.reembed`.

Opening and querying import only numpy; the building functions (rasterio/GDAL, onnxruntime) are
imported on first use, so a viewer of a large atlas does not pay for them.
"""

from typing import Any

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

_BUILD_NAMES = ("AtlasBuildError", "BuildReport", "add_imagery", "add_recordings", "build_atlas")

__all__ = [
    "Atlas", "AtlasBuildError", "AtlasRecordings", "AtlasTiles", "BuildReport", "RecordingMatch", "SoundQuery",
    "SourceInfo", "TileMatch", "add_imagery", "add_recordings", "build_atlas", "build_atlas_on_cluster", "locate_tile",
    "nearest_recordings", "open_atlas", "reembed_atlas", "sound_query", "tile_soundscape", "update_search_index",
]


def __getattr__(name: str) -> Any:
    if name in _BUILD_NAMES:
        from engine.atlas import build

        return getattr(build, name)
    if name == "build_atlas_on_cluster":
        from engine.atlas.distributed import build_atlas_on_cluster

        return build_atlas_on_cluster
    if name == "update_search_index":
        from engine.atlas.ann import update_search_index

        return update_search_index
    if name == "reembed_atlas":
        from engine.atlas.reembed import reembed_atlas

        return reembed_atlas
    raise AttributeError(f"module 'engine.atlas' has no attribute {name!r}")
