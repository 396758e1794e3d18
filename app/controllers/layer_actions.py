"""The map layer chooser's actions: which layers the open atlas offers, switching layers (a predicted
index layer computed in a worker the first time), following the sound query's heat map, and the
clicked tile's predicted soundscape."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from app.services import layers
from app.state.layer_state import IMAGERY, IMAGERY_LAYER, SIMILARITY, MapLayer
from app.workers import Task

if TYPE_CHECKING:
    from app.controllers.app_controller import AppController

log = logging.getLogger(__name__)


class LayerActions:
    """Owns the predictor of the open atlas and a cache of its computed layers."""

    def __init__(self, app: AppController) -> None:
        self.app = app
        self.predictor: Any = None
        self._atlas: Any = None
        self._cache: dict[str, MapLayer] = {}
        self._task: Task | None = None
        state = app.state
        state.project.changed.connect(self._project_changed)
        state.query.changed.connect(self._query_changed)
        state.selection.changed.connect(self._tile_selected)

    # ------------------------------------------------------------------------------- following

    def _project_changed(self) -> None:
        atlas = self.app.state.project.atlas
        if atlas is self._atlas:
            return
        self._atlas, self._cache = atlas, {}
        if self._task is not None and self._task.running:
            self._task.cancel()
        if atlas is None:
            self.predictor, note = None, ""
        else:
            self.predictor, note = layers.make_predictor(atlas)
        self._refresh_choices(note)
        self.app.state.layers.set_tile(None)
        self.app.state.layers.set_current(IMAGERY_LAYER)

    def _refresh_choices(self, note: str | None = None) -> None:
        s = self.app.state
        result = s.query.result
        has_query = result is not None and result.searched
        s.layers.set_choices(layers.layer_choices(self.predictor, s.layers.note if note is None else note, has_query),
                             s.layers.note if note is None else note)

    def _query_changed(self, result: Any) -> None:
        self._refresh_choices()
        if result is not None and result.searched:
            self.choose(SIMILARITY)
        elif self.app.state.layers.current.key == SIMILARITY:
            self.choose(IMAGERY)

    def _tile_selected(self, tile: Any) -> None:
        s = self.app.state.layers
        if tile is None or self.predictor is None:
            s.set_tile(None)
            return
        current = s.current.key
        name = current if current in self.predictor.names else self.predictor.names[0]
        s.set_tile(layers.tile_indices(self.predictor, tile.index, tile.tile_id, name))

    # --------------------------------------------------------------------------------- choosing

    def choose(self, key: str) -> Task | None:
        """Show layer ``key`` (imagery, similarity or an index name). An index layer not computed yet is
        computed in the background; the map keeps the old layer until it is ready."""
        s = self.app.state
        if key == IMAGERY:
            s.layers.set_current(IMAGERY_LAYER)
            return None
        if key == SIMILARITY:
            result = s.query.result
            if result is None or not result.searched:
                self.app.error("No sound query yet; search with a sound first (Sound search tab)")
                return None
            s.layers.set_current(layers.similarity_layer(result.scores))
            return None
        if self.predictor is None or key not in self.predictor.names:
            self.app.error(s.layers.note or f"{key}: not a layer of this atlas")
            return None
        if key in self._cache:
            self._show_index(self._cache[key])
            return None
        if self._task is not None and self._task.running:
            self._task.cancel()
        predictor = self.predictor
        s.layers.pending = key

        def done(layer: MapLayer) -> None:
            if predictor is not self.predictor:
                return  # another atlas was opened meanwhile
            self._cache[key] = layer
            if s.layers.pending == key:
                self._show_index(layer)

        self._task = self.app.runner.submit(f"Drawing the {layers.label_of(key)} map",
                                            lambda job: layers.index_layer(predictor, key),
                                            on_success=done, on_error=self.app.error, cancellable=False)
        return self._task

    def _show_index(self, layer: MapLayer) -> None:
        s = self.app.state
        s.layers.set_current(layer)
        tile = s.selection.tile
        if tile is not None and self.predictor is not None:  # the tile panel's profile follows the layer
            s.layers.set_tile(layers.tile_indices(self.predictor, tile.index, tile.tile_id, layer.key))
