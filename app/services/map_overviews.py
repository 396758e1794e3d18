"""Which imagery overviews the map draws for a view (no Qt): the atlas-wide mosaic beneath everything, and
a source's own overview only when few sources are in view, so that an atlas of thousands of GeoTIFFs opens
without decoding thousands of pictures (``engine.atlas.overview_mosaic``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Bounds = tuple[float, float, float, float]  # west, south, east, north in EPSG:3857 metres

MAX_SOURCES_IN_VIEW = 24  # more than this in view: the mosaic alone (each source is small on screen)
MIN_SOURCE_PX = 24  # a source narrower than this on screen adds nothing over the mosaic


@dataclass
class SourceOverviews:
    """The overviews of an atlas's sources: their bounds (None: no overview), how to load one (``load(k)``
    -> RGBA (h, w, 4) uint8, row 0 north), and how to load the mosaic of all of them (None: there is none;
    an atlas of one source, or built before the mosaic existed)."""

    bounds: list[Bounds | None]
    load: Callable[[int], np.ndarray]
    load_mosaic: Callable[[], tuple[np.ndarray, Bounds] | None] | None = None

    @classmethod
    def of_atlas(cls, atlas: Any) -> SourceOverviews:
        """From an opened atlas (the manifest only: nothing is decoded here)."""
        from engine.atlas.overview_mosaic import read_mosaic, read_mosaic_meta

        has_mosaic = read_mosaic_meta(atlas.path) is not None
        return cls(bounds=[s.overview_bounds for s in atlas.sources],
                   load=lambda k: atlas.overview(k)[0],
                   load_mosaic=(lambda: read_mosaic(atlas.path)) if has_mosaic else None)

    def choose(self, view: Bounds, metres_per_pixel: float) -> list[int]:
        """The sources whose own overview the view shows, largest on screen first."""
        west, south, east, north = view
        seen = []
        for k, b in enumerate(self.bounds):
            if b is None or b[2] < west or b[0] > east or b[3] < south or b[1] > north:
                continue
            px = (b[2] - b[0]) / metres_per_pixel if metres_per_pixel > 0 else np.inf
            if px >= MIN_SOURCE_PX or self.load_mosaic is None:
                seen.append((px, k))
        seen.sort(key=lambda t: (-t[0], t[1]))
        if self.load_mosaic is not None and len(seen) > MAX_SOURCES_IN_VIEW:
            return []  # zoomed out over many sources: the mosaic shows them
        return [k for _, k in seen[:MAX_SOURCES_IN_VIEW]]
