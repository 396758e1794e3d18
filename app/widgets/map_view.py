"""The map: imagery overviews and tiles, recording markers, the selected tile, a heat map with a
colour bar, a hover tooltip, a coordinate read-out and a scale bar.

Everything is drawn in EPSG:3857 metres (x east, y north) in one pyqtgraph ViewBox. At low zoom each
imagery source is one overview image; once few enough tiles are in view and big enough on screen,
their own images are drawn on top from a small pool of items (never one item per tile of the atlas).
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

ThumbnailFn = Callable[[int], np.ndarray | None]
HoverFn = Callable[[float, float], str | None]


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
        self._overviews: list[pg.ImageItem] = []
        self._heat_items: list[pg.ImageItem] = []
        self._heat_pyramids: list[HeatPyramid] = []
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
        for item in self._overviews + self._heat_items + self._detail_pool:
            self.plot.removeItem(item)
        self._overviews, self._heat_items, self._detail_pool, self._detail_shown = [], [], [], []
        self._heat_pyramids, self._heat_levels_shown = [], []
        self._detail_items = {}
        self._thumb_cache.clear()
        self.markers.setData([], [])
        self.selection_outline.setData([], [])
        self.tile_layout, self.heat_values, self.selected = None, None, None
        self.colour_bar.hide()

    def set_atlas(self, tile_layout: TileLayout, overviews: list[tuple[np.ndarray, tuple[float, float, float, float]]],
                  recordings_lonlat: tuple[np.ndarray, np.ndarray], thumbnail: ThumbnailFn | None,
                  hover_text: HoverFn | None) -> None:
        """Show an atlas.

        Args:
            tile_layout: the tiles' boxes and grids.
            overviews: per source, an RGBA image (row 0 north) and its (west, south, east, north) in EPSG:3857.
            recordings_lonlat: recording locations.
            thumbnail: ``f(tile index) -> (h, w, 3) uint8`` for zoomed-in detail.
            hover_text: ``f(lon, lat) -> tooltip`` or None.
        """
        self.clear()
        self.tile_layout, self._thumbnail, self._hover_text = tile_layout, thumbnail, hover_text
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
        for item in self._heat_items:
            self.plot.removeItem(item)
        self._heat_items, self._heat_pyramids, self._heat_levels_shown = [], [], []
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
        for _ in self._heat_pyramids:
            item = _image_item(3)
            item.setOpacity(HEAT_OPACITY)
            self.plot.addItem(item)
            self._heat_items.append(item)
        self._show_heat_levels()
        self.colour_bar.setLevels(levels)
        self.colour_bar.axis.setLabel(label)  # beside the tick values, outside the bar
        self.colour_label = label
        self.colour_bar.show()

    def _show_heat_levels(self) -> None:
        """Give each heat image the pyramid level that suits the zoom (swapped only when it changes)."""
        px = self.mercator_per_pixel()
        for k, (pyramid, item) in enumerate(zip(self._heat_pyramids, self._heat_items, strict=True)):
            level = pyramid.choose(px) if px > 0 else len(pyramid.levels) - 1
            if level == self._heat_levels_shown[k]:
                continue
            rgba, (a, b, c, d, e, f) = pyramid.levels[level].rgba, pyramid.levels[level].affine
            item.setImage(rgba, autoLevels=False)
            item.setTransform(QTransform(a, d, b, e, c, f))
            self._heat_levels_shown[k] = level

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
        if self._heat_pyramids:
            self._show_heat_levels()
        if not self._timers_stopped:  # a range change while the window closes must not restart it
            self._detail_timer.start()

    def stop_timers(self) -> None:
        """Stop the redraw and hover timers (the window is closing); they stay stopped."""
        self._timers_stopped = True
        self._detail_timer.stop()
        self._hover_proxy.timer.stop()

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

    def _update_detail(self) -> None:
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
        if pending:
            self._detail_timer.start(DETAIL_RETRY_MS)
        else:
            self._detail_timer.setInterval(DETAIL_DELAY_MS)
