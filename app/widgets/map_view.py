"""The map: imagery overviews and tiles, recording markers, the selected tile, a heat map with a
colour bar, a hover tooltip, a coordinate read-out and a scale bar.

Everything is drawn in EPSG:3857 metres (x east, y north) in one pyqtgraph ViewBox. At low zoom each
imagery source is one overview image; zoomed in past what a large source's overview resolves, the chunks
of its imagery pyramid in view (``engine.atlas.imagery_pyramid``); once few enough tiles are in view and
big enough on screen, their own images are drawn on top from a small pool of items (never one item per
tile of the atlas).
The heat map is one image per source with a pixel per tile (see ``app.services.map_layout``), drawn
from a pyramid of coarser levels when zoomed out (``app.services.map_lod``); the tiles in view and under
the cursor are found through the atlas's tile index (``engine.atlas.tile_index``), so opening the atlas and
drawing a frame follow the view, not the atlas's tile count.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPolygonF, QTransform
from PySide6.QtWidgets import QLabel, QToolTip, QVBoxLayout, QWidget

from app.services.coords import format_place
from app.services.geo import (
    ground_metres_per_mercator_metre,
    lonlat_to_mercator,
    mercator_to_lonlat,
)
from app.services.map_layout import TileLayout
from app.services.map_lod import HeatPyramid
from app.services.map_overviews import SourceOverviews
from app.widgets.scale_bar import ScaleBar

log = logging.getLogger(__name__)

MAX_DETAIL_TILES = 300  # tiles drawn individually at most
MIN_DETAIL_PX = 40  # a tile must be at least this wide on screen before its own image is drawn
THUMB_CACHE = 1500
DETAIL_DELAY_MS = 40  # after the view stops changing, draw the tiles in view
DETAIL_BUDGET_S = 0.015  # decoding and placing tile images per GUI turn (the rest on the next turns)
DETAIL_RETRY_MS = 5
HEAT_OPACITY = 0.62
HEAT_COLOURMAP = "viridis"  # perceptually uniform, readable by colour-blind users
HOVER_RATE_HZ = 15
OVERVIEW_CACHE_BYTES = 384 * 2**20  # decoded overviews kept (a 2048 px overview is 16 MB)
OVERVIEW_POLL_MS = 30  # how often the map looks for overviews decoded in the background
MOSAIC = -1  # the key of the atlas-wide mosaic among the overviews

ThumbnailFn = Callable[[int], np.ndarray | None]
OverviewKey = int | tuple[int, int, int, int]
HoverFn = Callable[[float, float], str | None]


def _image_box(level: object) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a pyramid level's image placed by its affine."""
    a, b, c, d, e, f = level.affine  # type: ignore[attr-defined]
    h, w = level.rgba.shape[:2]  # type: ignore[attr-defined]
    xs = [c, a * w + c, b * h + c, a * w + b * h + c]
    ys = [f, d * w + f, e * h + f, d * w + e * h + f]
    return min(xs), min(ys), max(xs), max(ys)


def _image_item(z: float) -> pg.ImageItem:
    item = pg.ImageItem(axisOrder="row-major")
    item.setZValue(z)
    return item


class MapView(QWidget):
    """The map widget. Coordinates in and out are WGS84 lon/lat.

    Signals:
        clicked(lon, lat): a left click that was not a drag.
        hovered(lon, lat): the pointer moved (rate-limited).
    """

    clicked = Signal(float, float)
    hovered = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground(QColor(236, 239, 242))
        self.canvas.ci.setContentsMargins(0, 0, 0, 0)
        self.plot: pg.PlotItem = self.canvas.addPlot(row=0, col=0)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.view: pg.ViewBox = self.plot.getViewBox()
        self.view.setAspectLocked(True)
        self.view.setDefaultPadding(0.02)
        self.colour_map = pg.colormap.get(HEAT_COLOURMAP)
        self._lut = self.colour_map.getLookupTable(nPts=256, alpha=False)
        self.colour_bar = pg.ColorBarItem(values=(0, 1), colorMap=self.colour_map, interactive=False,
                                          label="similarity", width=14)
        self.colour_bar.getAxis("left").setLabel(None)
        self.colour_bar.axis.setWidth(62)  # room for the legend title (a layer's name and unit)
        self.colour_bar.hide()
        self.canvas.addItem(self.colour_bar, row=0, col=1)

        self.readout = QLabel(" ")
        self.readout.setObjectName("mapReadout")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.readout)
        self.scale_bar = ScaleBar(self.canvas)

        self.tile_layout: TileLayout | None = None
        self._thumbnail: ThumbnailFn | None = None
        self._hover_text: HoverFn | None = None
        self._overviews: list[pg.ImageItem] = []  # given as pictures (set_atlas's ``overviews``)
        self._source_overviews: SourceOverviews | None = None  # or loaded per view, in the background
        # keyed by source, MOSAIC, or (source, level, column, row) for an imagery-pyramid chunk
        self._overview_items: dict[OverviewKey, pg.ImageItem] = {}
        self._overview_cache: OrderedDict[OverviewKey, HeatPyramid] = OrderedDict()  # decoded, with coarser levels
        self._overview_levels: dict[OverviewKey, int] = {}  # the pyramid level each overview item shows
        self._overview_jobs: dict[OverviewKey, Future] = {}
        self._overview_failed: set[OverviewKey] = set()
        self._loader: ThreadPoolExecutor | None = None
        self._heat_items: list[pg.ImageItem | None] = []  # per source; None until first in view
        self._heat_boxes = np.zeros((0, 4))  # each source's heat image: west, south, east, north
        self._heat_pyramids: list[HeatPyramid] = []
        self._heat_atlas: HeatPyramid | None = None  # many sources: the whole atlas in one picture
        self._heat_atlas_item: pg.ImageItem | None = None
        self._heat_atlas_level = -1
        self._heat_levels_shown: list[int] = []
        self._detail_pool: list[pg.ImageItem] = []
        self._detail_shown: list[int] = []
        self._detail_items: dict[int, pg.ImageItem] = {}
        self._thumb_cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.heat_values: np.ndarray | None = None
        self.heat_levels: tuple[float, float] = (0.0, 1.0)
        self.colour_label = "similarity"
        self.selected: int | None = None
        self.last_hover_text = ""
        self._timers_stopped = False
        self.coord_order = "latlon"  # View > Coordinates

        # Small, see-through markers: a SoundingEarth-sized atlas has tens of thousands of recordings.
        self.markers = pg.ScatterPlotItem(size=6, pxMode=True, pen=pg.mkPen(20, 20, 20, 170, width=1.0),
                                          brush=pg.mkBrush(255, 255, 255, 190), symbol="o")
        self.markers.setZValue(5)
        self.plot.addItem(self.markers)
        self.selection_outline = pg.PlotCurveItem(pen=pg.mkPen(255, 214, 0, width=3))
        self.selection_outline.setZValue(6)
        self.plot.addItem(self.selection_outline)

        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(DETAIL_DELAY_MS)
        self._detail_timer.timeout.connect(self._update_detail)
        self.view.sigRangeChanged.connect(self._range_changed)
        scene = self.plot.scene()
        scene.sigMouseClicked.connect(self._on_click)
        self._hover_proxy = pg.SignalProxy(scene.sigMouseMoved, rateLimit=HOVER_RATE_HZ, slot=self._on_move,
                                            threadSafe=False)

    # ------------------------------------------------------------------------------------ content

    def clear(self) -> None:
        """Remove the atlas from the map."""
        for item in self._overviews + self._heat_items + self._detail_pool + list(self._overview_items.values()):
            if item is not None:
                self.plot.removeItem(item)
        if self._heat_atlas_item is not None:
            self.plot.removeItem(self._heat_atlas_item)
        self._heat_atlas, self._heat_atlas_item, self._heat_atlas_level = None, None, -1
        self._overviews, self._heat_items, self._detail_pool, self._detail_shown = [], [], [], []
        for job in self._overview_jobs.values():
            job.cancel()
        self._source_overviews, self._overview_items, self._overview_jobs = None, {}, {}
        self._overview_levels = {}
        self._overview_cache.clear()
        self._overview_failed.clear()
        self._heat_pyramids, self._heat_levels_shown = [], []
        self._detail_items = {}
        self._thumb_cache.clear()
        self.markers.setData([], [])
        self.selection_outline.setData([], [])
        self.tile_layout, self.heat_values, self.selected = None, None, None
        self.colour_bar.hide()

    def set_atlas(self, tile_layout: TileLayout, overviews: list[tuple[np.ndarray, tuple[float, float, float, float]]],
                  recordings_lonlat: tuple[np.ndarray, np.ndarray], thumbnail: ThumbnailFn | None,
                  hover_text: HoverFn | None, source_overviews: SourceOverviews | None = None) -> None:
        """Show an atlas.

        Args:
            tile_layout: the tiles' boxes and grids.
            overviews: per source, an RGBA image (row 0 north) and its (west, south, east, north) in EPSG:3857,
                all drawn now (a few small sources); or [] with ``source_overviews``.
            recordings_lonlat: recording locations.
            thumbnail: ``f(tile index) -> (h, w, 3) uint8`` for zoomed-in detail.
            hover_text: ``f(lon, lat) -> tooltip`` or None.
            source_overviews: the sources' overviews and mosaic, loaded in the background as views need
                them (what the window uses: an atlas of thousands of sources opens without decoding them).
        """
        self.clear()
        self.tile_layout, self._thumbnail, self._hover_text = tile_layout, thumbnail, hover_text
        self._source_overviews = source_overviews
        for rgba, (west, south, east, north) in overviews:
            item = _image_item(0)
            item.setImage(np.ascontiguousarray(rgba[::-1]), autoLevels=False)
            item.setRect(QRectF(west, south, east - west, north - south))
            self.plot.addItem(item)
            self._overviews.append(item)
        rx, ry = lonlat_to_mercator(*recordings_lonlat)
        self.markers.setData(np.atleast_1d(rx), np.atleast_1d(ry))
        self.show_all()

    def show_all(self) -> None:
        """Zoom to the whole atlas."""
        if self.tile_layout is None or self.tile_layout.count == 0:
            return
        west, south, east, north = self.tile_layout.bounds
        self.view.setRange(QRectF(west, south, east - west, north - south), padding=0.02)

    def set_heat(self, values: np.ndarray | None, levels: tuple[float, float] | None = None,
                 label: str = "similarity", no_value_rgba: tuple[int, int, int, int] | None = None) -> None:
        """Colour every tile by ``values`` (one per tile) with a colour bar titled ``label``; None removes
        the heat map. NaN tiles are transparent, or drawn in ``no_value_rgba`` (never as a value)."""
        for item in self._heat_items + ([self._heat_atlas_item] if self._heat_atlas_item is not None else []):
            if item is not None:
                self.plot.removeItem(item)
        self._heat_items, self._heat_pyramids, self._heat_levels_shown = [], [], []
        self._heat_atlas, self._heat_atlas_item, self._heat_atlas_level = None, None, -1
        self.heat_values = None if values is None else np.asarray(values)
        if self.heat_values is not None and self.heat_values.dtype.kind != "f":
            self.heat_values = self.heat_values.astype(np.float64)  # float32 stays: no 80 MB copy at 10M tiles
        if self.heat_values is None or self.tile_layout is None:
            self.colour_bar.hide()
            return
        if levels is None:
            finite = np.isfinite(self.heat_values)
            values = self.heat_values if finite.all() else self.heat_values[finite]  # no copy when all are
            levels = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
            if levels[1] <= levels[0]:
                levels = (levels[0], levels[0] + 1e-6)
        self.heat_levels = levels
        self._heat_pyramids = [HeatPyramid(rgba, affine) for rgba, affine in
                               self.tile_layout.rasterise(self.heat_values, self._lut, levels, nan_rgba=no_value_rgba)]
        self._heat_levels_shown = [-1] * len(self._heat_pyramids)
        self._heat_boxes = np.array([_image_box(p.levels[0]) for p in self._heat_pyramids]).reshape(-1, 4)
        whole = self.tile_layout.rasterise_atlas(self.heat_values, self._lut, levels, nan_rgba=no_value_rgba)
        if whole is not None:  # many sources: one picture of the whole atlas for views from afar
            self._heat_atlas = HeatPyramid(*whole)
            self._heat_atlas_item = _image_item(3)
            self._heat_atlas_item.setOpacity(HEAT_OPACITY)
            self.plot.addItem(self._heat_atlas_item)
        self._show_heat_levels()
        self.colour_bar.setLevels(levels)
        self.colour_bar.axis.setLabel(label)  # beside the tick values, outside the bar
        self.colour_label = label
        self.colour_bar.show()

    def _show_heat_levels(self) -> None:
        """Give each heat image the pyramid level that suits the zoom (swapped only when it changes). An atlas
        of many sources is drawn as one picture of the whole atlas until its cells grow wider than two
        screen pixels; then each source's own image (only those in view are painted)."""
        px = self.mercator_per_pixel()
        whole = self._heat_atlas
        # (its cells are a tile or more: coarser than a tile only when the atlas is wider than 2048 tiles)
        per_source = whole is None or (px > 0 and whole.levels[0].affine[0] > 2 * px
                                       and whole.levels[0].affine[0] > 1.01 * self._tile_width())
        if whole is not None and self._heat_atlas_item is not None:
            self._heat_atlas_item.setVisible(not per_source)
            if not per_source:
                level = whole.choose(px) if px > 0 else len(whole.levels) - 1
                if level != self._heat_atlas_level:
                    chosen = whole.levels[level]
                    a, b, c, d, e, f = chosen.affine
                    self._heat_atlas_item.setImage(chosen.rgba, autoLevels=False)
                    self._heat_atlas_item.setTransform(QTransform(a, d, b, e, c, f))
                    self._heat_atlas_level = level
        if not self._heat_items:  # one per source, made and drawn only when in view (thousands of sources)
            self._heat_items = [None] * len(self._heat_pyramids)  # type: ignore[list-item]
        if per_source:
            (x0, x1), (y0, y1) = self.view.viewRange()
            boxes = self._heat_boxes
            in_view = ((boxes[:, 2] >= x0) & (boxes[:, 0] <= x1) & (boxes[:, 3] >= y0) & (boxes[:, 1] <= y1))
        for k, item in enumerate(self._heat_items):
            if not per_source or not in_view[k]:
                if item is not None:
                    item.setVisible(False)
                continue
            if item is None:
                item = _image_item(3)
                item.setOpacity(HEAT_OPACITY)
                self.plot.addItem(item)
                self._heat_items[k] = item
            item.setVisible(True)
            pyramid = self._heat_pyramids[k]
            level = pyramid.choose(px) if px > 0 else len(pyramid.levels) - 1
            if level == self._heat_levels_shown[k]:
                continue
            rgba, (a, b, c, d, e, f) = pyramid.levels[level].rgba, pyramid.levels[level].affine
            item.setImage(rgba, autoLevels=False)
            item.setTransform(QTransform(a, d, b, e, c, f))
            self._heat_levels_shown[k] = level

    def _tile_width(self) -> float:
        return self.tile_layout.median_tile_width() if self.tile_layout is not None else 1.0

    def heat_levels_shown(self) -> list[int]:
        """The pyramid level each source's heat image shows now (0: one cell per tile)."""
        return list(self._heat_levels_shown)

    def tile_at(self, lon: float, lat: float) -> int | None:
        """The tile under a point, through the tile index (what the map shows under the cursor)."""
        x, y = (float(v) for v in lonlat_to_mercator(lon, lat))
        return None if self.tile_layout is None else self.tile_layout.at(x, y)

    def set_selected(self, index: int | None) -> None:
        """Outline tile ``index`` (None: no outline)."""
        self.selected = index
        lay = self.tile_layout
        if index is None or lay is None:
            self.selection_outline.setData([], [])
            return
        quad = lay.quad(index)
        self.selection_outline.setData(np.append(quad[:, 0], quad[0, 0]), np.append(quad[:, 1], quad[0, 1]))

    def centre_on(self, lon: float, lat: float, tiles_across: float = 7.0) -> None:
        """Centre the map on (lon, lat), zoomed so that about ``tiles_across`` tiles fit."""
        x, y = (float(v) for v in lonlat_to_mercator(lon, lat))
        span = (self.tile_layout.median_tile_width() if self.tile_layout is not None else 1000.0) * tiles_across
        self.view.setRange(QRectF(x - span / 2, y - span / 2, span, span), padding=0)

    # ------------------------------------------------------------------------------- coordinates

    def lonlat_to_scene(self, lon: float, lat: float) -> QPointF:
        x, y = (float(v) for v in lonlat_to_mercator(lon, lat))
        return self.view.mapViewToScene(QPointF(x, y))

    def lonlat_to_canvas(self, lon: float, lat: float) -> QPoint:
        """Where (lon, lat) is in the canvas viewport's pixel coordinates (for clicks in tests)."""
        return self.canvas.mapFromScene(self.lonlat_to_scene(lon, lat))

    def scene_to_lonlat(self, pos: QPointF) -> tuple[float, float]:
        p = self.view.mapSceneToView(pos)
        lon, lat = mercator_to_lonlat(p.x(), p.y())
        return float(lon), float(lat)

    def mercator_per_pixel(self) -> float:
        """EPSG:3857 metres per screen pixel (from the range and the box's width, which is always current;
        ``ViewBox.viewPixelSize`` can lag one resize behind)."""
        (x0, x1), _ = self.view.viewRange()
        width = self.view.width()
        return (x1 - x0) / width if width > 0 else 0.0

    def metres_per_pixel(self) -> float:
        """Ground metres per screen pixel at the view's centre."""
        px = self.mercator_per_pixel()
        (x0, x1), (y0, y1) = self.view.viewRange()
        _, lat = mercator_to_lonlat((x0 + x1) / 2, (y0 + y1) / 2)
        return float(px * ground_metres_per_mercator_metre(float(lat)))

    # ----------------------------------------------------------------------------------- events

    def _on_click(self, ev: object) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.double():  # type: ignore[attr-defined]
            return
        if not self.plot.sceneBoundingRect().contains(ev.scenePos()):  # type: ignore[attr-defined]
            return
        lon, lat = self.scene_to_lonlat(ev.scenePos())  # type: ignore[attr-defined]
        self.clicked.emit(lon, lat)

    def _on_move(self, args: tuple) -> None:
        pos = args[0]
        if not self.plot.sceneBoundingRect().contains(pos):
            return
        lon, lat = self.scene_to_lonlat(pos)
        self.hovered.emit(lon, lat)
        tip = self._hover_text(lon, lat) if self._hover_text is not None else None
        self.readout.setText(f"{format_place(lat, lon, self.coord_order, 5)}" + (f"   ·   {tip.splitlines()[0]}" if tip else ""))
        self.last_hover_text = tip or ""
        if tip:
            QToolTip.showText(self.canvas.mapToGlobal(self.canvas.mapFromScene(pos)) + QPoint(14, 14), tip,
                              self.canvas)
        else:
            QToolTip.hideText()

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.scale_bar.set_scale(self.metres_per_pixel())
        self.scale_bar.move(6, self.canvas.height() - self.scale_bar.height() - 4)

    def _range_changed(self, *args: object) -> None:
        self.scale_bar.set_scale(self.metres_per_pixel())
        self.scale_bar.move(6, self.canvas.height() - self.scale_bar.height() - 4)
        if self._heat_pyramids or self._heat_atlas is not None:
            self._show_heat_levels()
        for key, item in self._overview_items.items():  # the level that suits the zoom, swapped only on change
            pyramid = self._overview_cache.get(key)
            if pyramid is not None:
                self._show_overview_level(key, pyramid, item)
        if not self._timers_stopped:  # a range change while the window closes must not restart it
            self._detail_timer.start()

    def stop_timers(self) -> None:
        """Stop the redraw and hover timers (the window is closing); they stay stopped."""
        self._timers_stopped = True
        self._detail_timer.stop()
        self._hover_proxy.timer.stop()
        if self._loader is not None:  # a decode under way finishes on its own; nothing new starts
            self._loader.shutdown(wait=False, cancel_futures=True)
            self._loader = None

    # ------------------------------------------------------------------------------ tile detail

    def _thumb(self, index: int) -> np.ndarray | None:
        cached = self._thumb_cache.get(index)
        if cached is not None:
            self._thumb_cache.move_to_end(index)
            return cached
        if self._thumbnail is None:
            return None
        try:
            image = self._thumbnail(index)
        except Exception as err:  # a damaged thumbnail must not break panning
            log.warning("tile %d: thumbnail unreadable (%s)", index, err)
            return None
        if image is None:
            return None
        image = np.ascontiguousarray(np.asarray(image))
        self._thumb_cache[index] = image
        while len(self._thumb_cache) > THUMB_CACHE:
            self._thumb_cache.popitem(last=False)
        return image

    def visible_detail(self) -> list[int]:
        """Tiles drawn individually right now."""
        return list(self._detail_shown)

    def overviews_shown(self) -> list[int]:
        """The sources whose own overview is drawn now (loaded per view; the mosaic is ``MOSAIC``)."""
        return sorted(k for k, item in self._overview_items.items() if isinstance(k, int) and item.isVisible())

    def chunks_shown(self) -> list[tuple[int, int, int, int]]:
        """The imagery-pyramid chunks drawn now: (source, level, column, row)."""
        return sorted(k for k, item in self._overview_items.items() if isinstance(k, tuple) and item.isVisible())

    def _load_overview(self, key: OverviewKey) -> HeatPyramid | None:
        """Runs on the loader thread: decode one overview (or the mosaic) and make its coarser levels, so a
        frame draws a picture about the size of the screen, never a 4096 px one scaled down."""
        provider = self._source_overviews
        if provider is None:
            return None
        if key == MOSAIC:
            loaded = provider.load_mosaic() if provider.load_mosaic is not None else None
        elif isinstance(key, tuple):  # a chunk of a source's imagery pyramid
            loaded = (provider.load_chunk(key), provider.chunk_bounds(key)) if provider.load_chunk else None
        else:
            bounds = provider.bounds[key]
            loaded = None if bounds is None else (provider.load(key), bounds)
        if loaded is None:
            return None
        rgba, (west, south, east, north) = loaded
        h, w = rgba.shape[:2]
        return HeatPyramid(np.ascontiguousarray(rgba), ((east - west) / w, 0.0, west, 0.0, -(north - south) / h, north))

    def _show_overview_level(self, key: OverviewKey, pyramid: HeatPyramid, item: pg.ImageItem) -> None:
        px = self.mercator_per_pixel()
        level = pyramid.choose(px, 1.0) if px > 0 else len(pyramid.levels) - 1
        if self._overview_levels.get(key) == level:
            return
        chosen = pyramid.levels[level]
        a, b, c, d, e, f = chosen.affine
        item.setImage(chosen.rgba, autoLevels=False)
        item.setTransform(QTransform(a, d, b, e, c, f))
        self._overview_levels[key] = level

    def _update_overviews(self) -> bool:
        """Draw the overviews the view needs, starting background decodes for those not loaded; True while
        some are still being decoded."""
        provider = self._source_overviews
        if provider is None or self._timers_stopped:
            return False
        (x0, x1), (y0, y1) = self.view.viewRange()
        sources = provider.choose((x0, y0, x1, y1), self.mercator_per_pixel())
        chunks = provider.choose_chunks((x0, y0, x1, y1), self.mercator_per_pixel(), sources)
        wanted: list[int | tuple[int, int, int, int]] = \
            [*([MOSAIC] if provider.load_mosaic is not None else []), *sources, *chunks]
        pending = False
        for key in wanted:
            if key in self._overview_failed:
                continue
            if key in self._overview_items:
                self._overview_items[key].show()
                continue
            pyramid = self._overview_cache.get(key)
            if pyramid is None:
                job = self._overview_jobs.get(key)
                if job is None:
                    if self._loader is None:
                        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="map-overviews")
                    self._overview_jobs[key] = self._loader.submit(self._load_overview, key)
                    pending = True
                    continue
                if not job.done():
                    pending = True
                    continue
                del self._overview_jobs[key]
                try:
                    pyramid = job.result()
                except Exception as err:  # a damaged overview: the tiles still show when zoomed in
                    log.warning("overview %s unreadable: %s", "mosaic" if key == MOSAIC else f"of source {key}", err)
                    pyramid = None
                if pyramid is None:
                    self._overview_failed.add(key)
                    continue
                self._overview_cache[key] = pyramid
                while sum(p.levels[0].rgba.nbytes for p in self._overview_cache.values()) > OVERVIEW_CACHE_BYTES \
                        and len(self._overview_cache) > 1:
                    self._overview_cache.popitem(last=False)
            self._overview_cache.move_to_end(key)
            item = _image_item(-0.5 if key == MOSAIC else 0.5 if isinstance(key, tuple) else 0)
            self.plot.addItem(item)
            self._overview_items[key] = item
            self._show_overview_level(key, pyramid, item)
        wanted_set = set(wanted)
        for key in [k for k in self._overview_items if k not in wanted_set]:
            if pending and isinstance(key, tuple):
                continue  # the previous level's chunks stay until the new ones are drawn (no blurry flash)
            self.plot.removeItem(self._overview_items.pop(key))  # its picture stays in the cache a while
            self._overview_levels.pop(key, None)
        return pending

    def settle(self, timeout_s: float = 60.0) -> None:
        """Finish drawing the view now: overviews decoded and tile images placed (for screenshots)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._update_detail()
            if not self._detail_timer.isActive():
                return
            self._detail_timer.stop()
            jobs = list(self._overview_jobs.values())
            if jobs:
                wait_for(jobs, timeout=max(0.0, deadline - time.monotonic()))

    def _update_detail(self) -> None:
        overviews_pending = self._update_overviews()
        lay = self.tile_layout
        wanted: list[int] = []
        if lay is not None and lay.count and self._thumbnail is not None:
            (x0, x1), (y0, y1) = self.view.viewRange()
            px = self.mercator_per_pixel()
            if px > 0 and lay.median_tile_width() / px >= MIN_DETAIL_PX:
                vis = lay.visible(x0, y0, x1, y1)
                if vis.size <= MAX_DETAIL_TILES:
                    wanted = [int(i) for i in vis]
        # Items already showing a wanted tile keep it; the others are reused for the new tiles.
        wanted_set = set(wanted)
        keep = {index: item for index, item in self._detail_items.items() if index in wanted_set}
        kept_items = set(map(id, keep.values()))
        free = [item for item in self._detail_pool if id(item) not in kept_items]
        self._detail_items = dict(keep)
        new = [index for index in wanted if index not in keep]
        quads = lay.quads(np.array(new, dtype=np.int64)) if new and lay is not None else np.zeros((0, 4, 2))
        deadline = time.perf_counter() + DETAIL_BUDGET_S
        pending = False
        for index, quad in zip(new, quads, strict=True):
            if time.perf_counter() > deadline:
                pending = True  # the rest on the next turn, so panning never waits on JPEGs or items
                break
            image = self._thumb(index)
            if image is None:
                continue
            if free:
                item = free.pop()
            else:
                item = _image_item(1)
                self.plot.addItem(item)
                self._detail_pool.append(item)
            h, w = image.shape[:2]
            transform = QTransform()
            source = QPolygonF([QPointF(0, 0), QPointF(w, 0), QPointF(w, h), QPointF(0, h)])
            target = QPolygonF([QPointF(float(px), float(py)) for px, py in quad])
            if QTransform.quadToQuad(source, target, transform):
                item.setImage(image, autoLevels=False)
                item.setTransform(transform)
                item.show()
                self._detail_items[index] = item
            else:
                free.append(item)
        for item in free:
            item.hide()
        self._detail_shown = list(self._detail_items)
        if pending or overviews_pending:
            self._detail_timer.start(DETAIL_RETRY_MS if pending else OVERVIEW_POLL_MS)
        else:
            self._detail_timer.setInterval(DETAIL_DELAY_MS)
