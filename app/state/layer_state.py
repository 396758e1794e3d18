"""The map's layer: which one is shown (imagery, the last sound query's heat map, a predicted index or
composition share), its per-tile values and legend, and the clicked tile's predicted soundscape.
Plain Python; the layer actions write it, the map, the layer control and the tile panel render it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.state.observable import Event

IMAGERY = "imagery"
SIMILARITY = "similarity"


@dataclass(frozen=True)
class LayerChoice:
    """One entry of the layer chooser. ``reason`` says why an unavailable one cannot be shown."""

    key: str
    label: str
    unit: str = ""
    available: bool = True
    reason: str = ""


@dataclass(frozen=True)
class MapLayer:
    """A layer as the map draws it: ``values`` one per tile (NaN: no value, drawn as such, never as 0),
    or None for the bare imagery; ``levels`` the values at the colour bar's ends."""

    key: str
    label: str
    unit: str = ""
    values: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    levels: tuple[float, float] = (0.0, 1.0)

    @property
    def no_value(self) -> int:
        """How many tiles have no value."""
        return 0 if self.values is None else int(np.count_nonzero(~np.isfinite(self.values)))

    @property
    def legend_title(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


@dataclass(frozen=True)
class TileIndices:
    """A tile's predicted indices ({name: (value, uncertainty)}, NaN: no value) and the 24-hour profile
    of one of them from the tile's best-matching recordings whose start time is known."""

    index: int
    tile_id: int
    values: dict[str, tuple[float, float]]
    profile_name: str = ""
    profile: np.ndarray = field(default_factory=lambda: np.full(24, np.nan))  # (24,) NaN: no recording then
    profile_counts: np.ndarray = field(default_factory=lambda: np.zeros(24, np.int64))
    units: dict[str, str] = field(default_factory=dict)

    @property
    def has_times(self) -> bool:
        return bool(np.asarray(self.profile_counts).sum() > 0)


IMAGERY_LAYER = MapLayer(IMAGERY, "Imagery")


class LayerState:
    """The layer chooser's entries, the shown layer and the selected tile's indices."""

    def __init__(self) -> None:
        self.changed = Event("layers.changed")  # the shown layer (MapLayer)
        self.choices_changed = Event("layers.choices_changed")
        self.tile_changed = Event("layers.tile_changed")  # TileIndices or None
        self.choices: list[LayerChoice] = [LayerChoice(IMAGERY, "Imagery")]
        self.note = ""  # why the index layers are missing, if they are
        self.current: MapLayer = IMAGERY_LAYER
        self.pending: str | None = None  # a layer being computed
        self.tile: TileIndices | None = None

    def set_choices(self, choices: list[LayerChoice], note: str = "") -> None:
        self.choices, self.note = list(choices), note
        self.choices_changed.emit()

    def choice(self, key: str) -> LayerChoice | None:
        return next((c for c in self.choices if c.key == key), None)

    def set_current(self, layer: MapLayer) -> None:
        self.current, self.pending = layer, None
        self.changed.emit(layer)

    def set_tile(self, tile: TileIndices | None) -> None:
        self.tile = tile
        self.tile_changed.emit(tile)
