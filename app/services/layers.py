"""The map's layers computed from the engine's torch-free predictor (``engine.ecology.maps``): which
layers an atlas offers, a predicted index or composition layer for every tile, the heat map of a sound
query, and a clicked tile's predicted values with its 24-hour profile. Qt-free."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from app.state.layer_state import IMAGERY, SIMILARITY, LayerChoice, MapLayer, TileIndices
from engine.errors import UserInputError

log = logging.getLogger(__name__)

# What each stored index measures, as the legend's unit (engine.ecology.indices defines them).
UNITS = {
    "ACI": "ACI, sum over bins",
    "ADI": "Shannon index, 1 kHz bins",
    "AEI": "Gini index, 0–1",
    "BI": "dB × kHz, 1–10 kHz",
    "NDSI": "−1 anthropophony … +1 biophony",
    "Ht": "temporal entropy, 0–1",
    "Hf": "spectral entropy, 0–1",
    "rBA": "biophony / anthropophony energy",
    "anthropophony_energy": "band power, 0–1 kHz",
    "biophony_energy": "band power, 1–10 kHz",
    "biophony_share": "share of the sound, 0–1",
    "anthropophony_share": "share of the sound, 0–1",
    "geophony_share": "share of the sound, 0–1",
}
LABELS = {"biophony_share": "Biophony share", "anthropophony_share": "Anthropophony share",
          "geophony_share": "Geophony share", "anthropophony_energy": "Anthropophony energy",
          "biophony_energy": "Biophony energy"}
# Layers whose scale is fixed, so two maps of them compare by colour.
FIXED_LEVELS = {"biophony_share": (0.0, 1.0), "anthropophony_share": (0.0, 1.0), "geophony_share": (0.0, 1.0),
                "NDSI": (-1.0, 1.0)}
SIMILARITY_LABEL = "Sound query similarity"
NO_INDICES = ("This atlas has no acoustic indices; run `soundscape-engine atlas indices --atlas {path}` "
              "(needs the engine) to add the index layers")


def label_of(name: str) -> str:
    return LABELS.get(name, name)


def make_predictor(atlas: Any) -> tuple[Any, str]:
    """The engine's predictor of the atlas's index layers, or (None, why not) for an atlas without indices."""
    from engine.ecology.maps import SoundscapePredictor

    if getattr(atlas, "indices", None) is None or len(atlas.recordings) == 0 or len(atlas.tiles) == 0:
        return None, NO_INDICES.format(path=atlas.path)
    try:
        return SoundscapePredictor(atlas), ""
    except UserInputError as err:
        return None, str(err)


def layer_choices(predictor: Any, note: str, query_available: bool) -> list[LayerChoice]:
    """The chooser's entries: imagery, the query's heat map, then each index and composition share."""
    choices = [LayerChoice(IMAGERY, "Imagery"),
               LayerChoice(SIMILARITY, SIMILARITY_LABEL, "", query_available,
                           "" if query_available else "search with a sound first (Sound search tab)")]
    if predictor is None:
        return choices
    return choices + [LayerChoice(name, label_of(name), UNITS.get(name, "")) for name in predictor.names]


def levels_for(name: str, values: np.ndarray) -> tuple[float, float]:
    """The colour bar's range: fixed for shares and NDSI, else the values' range (NaN left out)."""
    if name in FIXED_LEVELS:
        return FIXED_LEVELS[name]
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo, lo + 1e-6)


def index_layer(predictor: Any, name: str) -> MapLayer:
    """The predicted ``name`` for every tile (the first call may search every tile's neighbours: run it
    in a worker)."""
    layer = predictor.layer(name)
    values = np.asarray(layer.values, np.float64)
    return MapLayer(name, label_of(name), UNITS.get(name, ""), values, np.asarray(layer.uncertainty, np.float64),
                    levels_for(name, values))


def similarity_layer(scores: np.ndarray) -> MapLayer:
    """The heat map of a sound query (cosine-like similarity per tile, higher is more alike)."""
    values = np.asarray(scores, np.float64)
    return MapLayer(SIMILARITY, SIMILARITY_LABEL, "", values, None, levels_for(SIMILARITY, values))


def tile_indices(predictor: Any, index: int, tile_id: int, profile_name: str) -> TileIndices:
    """A tile's predicted values of every index and the 24-hour profile of ``profile_name`` (fast: one
    tile against the recordings, no worker needed)."""
    values = predictor.tile_values(index)
    profile = predictor.hourly_profile(index, profile_name)
    return TileIndices(index=index, tile_id=tile_id, values=values, profile_name=profile_name,
                       profile=np.asarray(profile.values, np.float64), profile_counts=np.asarray(profile.counts),
                       units={n: UNITS.get(n, "") for n in values})
