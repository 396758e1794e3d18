"""Which imagery overviews the map draws for a view (no Qt): the atlas-wide mosaic beneath everything, a
source's own overview only when few sources are in view, so that an atlas of thousands of GeoTIFFs opens
without decoding thousands of pictures (``engine.atlas.overview_mosaic``), and, zoomed in further than a
large source's overview resolves, the chunks of its imagery pyramid at the level that suits the zoom
(``engine.atlas.imagery_pyramid``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Bounds = tuple[float, float, float, float]  # west, south, east, north in EPSG:3857 metres

MAX_SOURCES_IN_VIEW = 24  # more than this in view: the mosaic alone (each source is small on screen)
MIN_SOURCE_PX = 24  # a source narrower than this on screen adds nothing over the mosaic
MAX_CHUNKS_IN_VIEW = 48  # pyramid chunks drawn at most (a chunk is at least 512 px on screen: ~20 fill a view)
ChunkKey = tuple[int, int, int, int]  # source, level, column, row


@dataclass
class SourceOverviews:
    """The overviews of an atlas's sources: their bounds (None: no overview), how to load one (``load(k)``
    -> RGBA (h, w, 4) uint8, row 0 north), and how to load the mosaic of all of them (None: there is none;
    an atlas of one source, or built before the mosaic existed)."""

    bounds: list[Bounds | None]
    load: Callable[[int], np.ndarray]
    load_mosaic: Callable[[], tuple[np.ndarray, Bounds] | None] | None = None
    pyramids: dict[int, dict[str, Any]] | None = None  # per source: its imagery pyramid's spec
    load_chunk: Callable[[ChunkKey], np.ndarray] | None = None

    @classmethod
    def of_atlas(cls, atlas: Any) -> SourceOverviews:
        """From an opened atlas (the manifest only: nothing is decoded here)."""
        from engine.atlas.imagery_pyramid import load_chunk, read_pyramid_meta
        from engine.atlas.overview_mosaic import read_mosaic, read_mosaic_meta

        has_mosaic = read_mosaic_meta(atlas.path) is not None
        meta = read_pyramid_meta(atlas.path)
        pyramids = {}
        for key, spec in ((meta or {}).get("sources") or {}).items():
            try:
                if spec.get("levels"):
                    pyramids[int(key)] = {**spec, "chunks": [{tuple(c) for c in level} for level in spec["levels"]]}
            except (TypeError, ValueError):  # a damaged entry: that source shows its overview and tiles
                continue
        return cls(bounds=[s.overview_bounds for s in atlas.sources],
                   load=lambda k: atlas.overview(k)[0],
                   load_mosaic=(lambda: read_mosaic(atlas.path)) if has_mosaic else None,
                   pyramids=pyramids or None,
                   load_chunk=lambda c: load_chunk(atlas.path, *c))

    def chunk_bounds(self, key: ChunkKey) -> Bounds:
        """(west, south, east, north) of a pyramid chunk."""
        from engine.atlas.imagery_pyramid import chunk_bounds

        s, level, cx, cy = key
        return chunk_bounds((self.pyramids or {})[s], level, cx, cy)

    def choose_chunks(self, view: Bounds, metres_per_pixel: float, sources: list[int]) -> list[ChunkKey]:
        """The pyramid chunks the view shows for ``sources`` (those whose overview it draws): per source the
        coarsest level still at least as fine as the screen, when that is finer than its overview."""
        if not self.pyramids or metres_per_pixel <= 0:
            return []
        west, south, east, north = view
        out: list[ChunkKey] = []
        for s in sources:
            spec = self.pyramids.get(s)
            if spec is None:
                continue
            res = float(spec["res"])
            levels = len(spec["chunks"])
            finest_needed = [lv for lv in range(levels) if res * 2 ** lv <= metres_per_pixel]
            level = finest_needed[-1] if finest_needed else 0
            overview_res = spec.get("overview_res")
            if overview_res is not None and metres_per_pixel >= float(overview_res):
                continue  # the overview is as fine as the screen: it shows the source
            side = res * 2 ** level * int(spec.get("chunk_px", 1024))
            x0, y0 = spec["origin"]
            cols = range(int(np.floor((west - x0) / side)), int(np.floor((east - x0) / side)) + 1)
            rows = range(int(np.floor((y0 - north) / side)), int(np.floor((y0 - south) / side)) + 1)
            have = spec["chunks"][level]
            out.extend((s, level, cx, cy) for cy in rows for cx in cols if (cx, cy) in have)
            if len(out) >= MAX_CHUNKS_IN_VIEW:
                return out[:MAX_CHUNKS_IN_VIEW]
        return out

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
