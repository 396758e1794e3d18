"""GeoTIFF imagery for the atlas: opening and checking a raster, the tile grid, reading tiles in
windows, WGS84 footprints, and a Web Mercator overview (torch-free; rasterio/GDAL).

Tiles are square on the ground: a tile of ``tile_size_m`` spans ``tile_size_m / pixel size`` pixels
along each axis, with the pixel size measured on the ground at the raster's centre (so it is right for
UTM metres, degrees and Web Mercator alike). With ``tile_px`` the tile is that many pixels instead. The
grid starts at the top-left pixel; only whole tiles are cut (a right or bottom remainder is left
out). A tile with less than ``min_valid_fraction`` of valid pixels (nodata, alpha or mask) is skipped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import CRSError, RasterioError
from rasterio.transform import Affine
from rasterio.windows import Window

from engine.errors import ConfigError, ImageFileError, brief
from engine.geo import (
    WEB_MERCATOR_MAX_LAT,
    apply_affine,
    contiguous_lon,
    ground_pixel_size_m,
    lonlat_to_web_mercator,
    to_lonlat,
    unwrap_lon,
    wrap_lon,
)

log = logging.getLogger(__name__)

DEFAULT_TILE_SIZE_M = 200.0  # about a SoundingEarth image (1024 px at ~0.2 m)
MIN_TILE_PX = 8
GDAL_CACHE_BYTES = 96 * 2**20  # GDAL's default (5% of RAM) would break the atlas build's memory bound
FIX_GEOREF = "georeference it (e.g. gdal_edit.py -a_srs EPSG:XXXX) or pass --assume-crs EPSG:XXXX"
# --assume-crs only gives a CRS to a file without one: never suggested where it cannot help.
FIX_NO_TRANSFORM = "georeference it first (e.g. gdal_translate -a_srs EPSG:XXXX -a_ullr ULX ULY LRX LRY in.tif out.tif)"
FIX_FILE_CRS = "correct the CRS or geotransform in the file (e.g. gdal_edit.py -a_srs EPSG:XXXX)"


def gdal_env() -> rasterio.Env:
    """The GDAL settings builds run under: a bounded block cache and no side-car probing.

    rasterio applies GDAL_CACHEMAX through GDALSetCacheMax64, so it takes effect even after the cache
    was first used, and its value is in bytes (a small number would starve GDAL of cache: every pixel
    read would decompress its block again)."""
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES, GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR")


@dataclass(frozen=True)
class TileGrid:
    """Whole tiles of ``tile_w`` x ``tile_h`` pixels from the top-left corner of a raster."""

    tile_w: int
    tile_h: int
    cols: int
    rows: int
    ground_w_m: float  # ground width and height of one tile at the raster's centre
    ground_h_m: float

    @property
    def count(self) -> int:
        return self.cols * self.rows

    def position(self, k: int) -> tuple[int, int]:
        """(col, row) of the k-th tile in row-major order."""
        return k % self.cols, k // self.cols

    def window(self, col: int, row: int) -> Window:
        return Window(col * self.tile_w, row * self.tile_h, self.tile_w, self.tile_h)


def imagery_fingerprint(path: Path) -> dict[str, int]:
    """What tells a source file unchanged: its size and modification time. A GDAL VRT is a list of other
    files, so for one the sizes of all its files are summed and the latest time is kept: a changed member
    is a changed source."""
    st = path.stat()
    size, mtime = st.st_size, st.st_mtime_ns
    if path.suffix.lower() == ".vrt":
        try:
            with rasterio.open(path) as ds:
                members = [Path(f) for f in ds.files if Path(f) != path]
        except RasterioError:  # unreadable: the open that follows says so in one line
            return {"size": size, "mtime_ns": mtime}
        for member in members:
            try:
                mst = member.stat()
            except OSError:  # a missing member: reading it will fail with its name
                continue
            size, mtime = size + mst.st_size, max(mtime, mst.st_mtime_ns)
    return {"size": size, "mtime_ns": mtime}


def parse_crs(value: str, option: str = "--assume-crs") -> CRS:
    """Parse EPSG:XXXX, a bare EPSG number, WKT or a PROJ string."""
    try:
        return CRS.from_user_input(int(value) if str(value).isdigit() else value)
    except (CRSError, ValueError, TypeError):
        raise ConfigError(option, f"unknown coordinate reference system {value!r}",
                          "give it as EPSG:XXXX, e.g. EPSG:32618") from None


class ImagerySource:
    """An opened, checked GeoTIFF (any raster GDAL reads). Use as a context manager.

    Raises (from the constructor) :class:`ImageFileError` naming the file and the fix: missing, not
    a raster, truncated or corrupt, no CRS (unless ``assume_crs``), no geotransform, GCPs only,
    unsupported bands.
    """

    def __init__(self, path: str | Path, assume_crs: str | None = None,
                 stretch: list[list[float]] | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ImageFileError(self.path, "imagery file not found", "check the path")
        if self.path.stat().st_size == 0:
            raise ImageFileError(self.path, "file is empty (0 bytes)", "re-copy the GeoTIFF")
        try:
            self.ds = rasterio.open(self.path)
        except RasterioError as err:
            raise ImageFileError(self.path, f"cannot be opened as a raster: truncated, corrupt or not a GeoTIFF "
                                 f"({_short(err)})", "re-copy or re-export it as a GeoTIFF") from None
        try:
            self._check(assume_crs)
            self.stretch = stretch if stretch is not None else self._measure_stretch()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------------ checking
    def _check(self, assume_crs: str | None) -> None:
        ds = self.ds
        self.width, self.height = ds.width, ds.height
        georef = not ds.transform.is_identity
        if not georef:
            if ds.gcps[0]:
                raise ImageFileError(self.path, "is placed by ground control points only, not a geotransform",
                                     "warp it first: gdalwarp -t_srs EPSG:XXXX in.tif out.tif")
            raise ImageFileError(self.path, "has no georeferencing (its pixels are not placed on the Earth)",
                                 FIX_NO_TRANSFORM)
        if ds.crs is None or not ds.crs.to_wkt():
            if assume_crs is None:
                raise ImageFileError(self.path, "has no coordinate reference system (CRS)", FIX_GEOREF)
            self.crs = parse_crs(assume_crs)
            log.info("%s: no CRS in the file, assuming %s", self.path, self.crs)
        else:
            self.crs = ds.crs
        fix = (f"--assume-crs {assume_crs} does not fit its coordinates; check the code, or georeference the file "
               "(e.g. gdal_edit.py -a_srs EPSG:XXXX)") if ds.crs is None or not ds.crs.to_wkt() else FIX_FILE_CRS
        self.transform = ds.transform
        corners_x, corners_y = apply_affine(self.transform, [0, self.width, self.width, 0, self.width / 2],
                                            [0, 0, self.height, self.height, self.height / 2])
        try:
            lon, lat = to_lonlat(self.crs, corners_x, corners_y)
        except (RasterioError, CRSError) as err:
            raise ImageFileError(self.path, f"its coordinates cannot be turned into longitude/latitude ({_short(err)})",
                                 fix) from None
        if not (np.isfinite(lon).all() and np.isfinite(lat).all() and (np.abs(lat) <= 90.001).all()):
            raise ImageFileError(self.path, "its corners fall outside the Earth in its CRS (wrong CRS or geotransform)",
                                 fix)
        self.bands, self.palette = self._choose_bands()
        self.has_mask = not all(MaskFlags.all_valid in flags for flags in ds.mask_flag_enums)
        self._check_readable()

    def _choose_bands(self) -> tuple[list[int], np.ndarray | None]:
        ds = self.ds
        interp = list(ds.colorinterp)
        if ds.count >= 3:
            rgb = [interp.index(c) + 1 if c in interp else None
                   for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue)]
            return (rgb if None not in rgb else [1, 2, 3]), None
        if ds.count >= 1 and interp and interp[0] == ColorInterp.palette:
            lut = np.zeros((256, 3), np.uint8)
            for value, rgba in ds.colormap(1).items():
                if 0 <= value < 256:
                    lut[value] = rgba[:3]
            return [1], lut
        if ds.count >= 1:
            return [1], None
        raise ImageFileError(self.path, "has no raster bands", "use an RGB or grey GeoTIFF")

    def _check_readable(self) -> None:
        """Read the last row of blocks: a truncated file fails here, not halfway through a build."""
        try:
            w = min(self.width, 64)
            self.ds.read(self.bands[0], window=Window(self.width - w, self.height - 1, w, 1))
            self.ds.read(self.bands[0], window=Window(0, 0, w, 1))
        except RasterioError as err:
            raise ImageFileError(self.path, f"truncated or corrupt (cannot read its pixels: {_short(err)})",
                                 "re-copy or re-export the GeoTIFF") from None

    def _measure_stretch(self) -> list[list[float]] | None:
        """Per-band 2nd/98th percentiles for rasters that are not 8-bit (uint16, float...); 8-bit is kept."""
        if self.ds.dtypes[0] == "uint8" or self.palette is not None:
            return None
        data, mask = self._read(None, 512, 512, Resampling.nearest)
        valid = mask > 0
        lo_hi = []
        for band in data:
            values = band[valid & np.isfinite(band)]
            lo, hi = (np.percentile(values, [2, 98]) if values.size else (0.0, 1.0))
            lo_hi.append([float(lo), float(hi if hi > lo else lo + 1)])
        return lo_hi

    # ------------------------------------------------------------------------------ the grid
    def grid(self, tile_size_m: float | None = None, tile_px: int | None = None) -> TileGrid:
        """The tile grid for a ground size or a pixel size (exactly one of them).

        Raises:
            ImageFileError: tiles too small for the raster's resolution, or the raster smaller than one tile.
        """
        gx, gy = ground_pixel_size_m(self.crs, self.transform, self.width, self.height)
        if tile_px is not None:
            if int(tile_px) < MIN_TILE_PX:
                raise ConfigError("--tile-px", f"{tile_px} px is too small", f"use at least {MIN_TILE_PX} px")
            tw = th = int(tile_px)
            what = f"{tw} x {th} px"
        else:
            if tile_size_m is None or not tile_size_m > 0:
                raise ConfigError("--tile-size-m", f"{tile_size_m!r} is not a positive size", "give metres, e.g. 200")
            tw, th = round(tile_size_m / gx), round(tile_size_m / gy)
            if min(tw, th) < MIN_TILE_PX:
                need = MIN_TILE_PX * max(gx, gy)
                raise ImageFileError(self.path, f"a {tile_size_m:g} m tile spans only {min(tw, th)} px at this "
                                     f"image's {max(gx, gy):.3g} m pixels",
                                     f"use --tile-size-m {math.ceil(need):d} or more, or --tile-px")
            what = f"{tile_size_m:g} m ({tw} x {th} px)"
        cols, rows = self.width // tw, self.height // th
        if cols < 1 or rows < 1:
            raise ImageFileError(self.path, f"{self.width} x {self.height} px is smaller than one tile of {what}",
                                 "use a smaller --tile-size-m or --tile-px")
        return TileGrid(tw, th, cols, rows, tw * gx, th * gy)

    def footprints(self, grid: TileGrid, cols: np.ndarray, rows: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """WGS84 centres and corner footprints of tiles.

        Returns:
            lon (n,), lat (n,), footprints (n, 4, 2) as (lon, lat) of the top-left, top-right,
            bottom-right and bottom-left pixel corners of each tile.
        """
        cols = np.asarray(cols, dtype=np.float64)
        rows = np.asarray(rows, dtype=np.float64)
        x0, y0 = cols * grid.tile_w, rows * grid.tile_h
        x1, y1 = x0 + grid.tile_w, y0 + grid.tile_h
        px = np.stack([x0, x1, x1, x0, (x0 + x1) / 2], axis=1)
        py = np.stack([y0, y0, y1, y1, (y0 + y1) / 2], axis=1)
        xs, ys = apply_affine(self.transform, px.ravel(), py.ravel())
        lon, lat = to_lonlat(self.crs, xs, ys)
        lon, lat = lon.reshape(-1, 5), lat.reshape(-1, 5)
        # Centres in [-180, 180) (a raster in degrees may run past 180); corners within 180 degrees of
        # their centre, so a tile astride the antimeridian keeps a small footprint (corners just past +-180).
        centre = wrap_lon(lon[:, 4])
        fp = np.stack([unwrap_lon(lon[:, :4], centre[:, None]), lat[:, :4]], axis=2)
        return centre, lat[:, 4].copy(), fp

    # ------------------------------------------------------------------------------ reading
    def _read(self, window: Window | None, out_w: int, out_h: int, resampling: Resampling
              ) -> tuple[np.ndarray, np.ndarray]:
        """Bands (b, h, w) in the file's dtype and the validity mask (h, w) uint8, resampled."""
        try:
            data = self.ds.read(self.bands, window=window, out_shape=(len(self.bands), out_h, out_w),
                                resampling=resampling)
            if self.has_mask:
                mask = self.ds.dataset_mask(window=window, out_shape=(out_h, out_w))
            else:
                mask = np.full((out_h, out_w), 255, np.uint8)
        except RasterioError as err:
            where = f" near pixel ({int(window.col_off)}, {int(window.row_off)})" if window is not None else ""
            raise ImageFileError(self.path, f"read failed{where} ({_short(err)}): truncated or corrupt",
                                 "re-copy or re-export the GeoTIFF; the tiles built so far are kept") from None
        return data, mask

    def to_rgb(self, data: np.ndarray) -> np.ndarray:
        """(b, h, w) bands -> (h, w, 3) uint8: palette lookup, grey to RGB, or the percentile stretch."""
        if self.palette is not None:
            return self.palette[data[0].astype(np.intp).clip(0, 255)]
        if self.stretch is not None:
            out = np.empty(data.shape, np.uint8)
            for i, (lo, hi) in enumerate(self.stretch):
                out[i] = np.clip((data[i].astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
            data = out
        data = data.astype(np.uint8, copy=False)
        if data.shape[0] == 1:
            data = np.repeat(data, 3, axis=0)
        return np.ascontiguousarray(data.transpose(1, 2, 0))

    def read_tile(self, grid: TileGrid, col: int, row: int, size: int) -> tuple[np.ndarray, float]:
        """One tile resampled to ``size`` x ``size`` (area average when shrinking, bilinear when growing).

        Returns:
            (rgb (size, size, 3) uint8, fraction of valid pixels).
        """
        shrink = grid.tile_w >= size and grid.tile_h >= size
        data, mask = self._read(grid.window(col, row), size, size,
                                Resampling.average if shrink else Resampling.bilinear)
        return self.to_rgb(data), float(np.count_nonzero(mask)) / mask.size

    def overview(self, max_px: int = 2048) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """The whole raster at most ``max_px`` on a side, reprojected to Web Mercator (EPSG:3857).

        Read decimated (never at full resolution in memory), then warped in memory.

        Returns:
            (RGBA uint8 (h, w, 4) with alpha 0 outside the image and on nodata, bounds (west, south,
            east, north) in EPSG:3857 metres).
        """
        from rasterio.warp import reproject

        scale = max(1.0, max(self.width, self.height) / max_px)
        ow, oh = max(1, round(self.width / scale)), max(1, round(self.height / scale))
        data, mask = self._read(None, ow, oh, Resampling.average if scale > 1 else Resampling.nearest)
        rgba = np.concatenate([self.to_rgb(data).transpose(2, 0, 1), mask[None]], axis=0)
        src_transform = self.transform @ self.transform.scale(self.width / ow, self.height / oh)
        west, south, east, north = _lonlat_bounds(self)
        south, north = max(south, -WEB_MERCATOR_MAX_LAT), min(north, WEB_MERCATOR_MAX_LAT)
        (x0, x1), (y0, y1) = lonlat_to_web_mercator([west, east], [south, north])
        res = max(x1 - x0, y1 - y0) / max(ow, oh)
        dw, dh = max(1, math.ceil((x1 - x0) / res)), max(1, math.ceil((y1 - y0) / res))
        dst_transform = Affine(res, 0.0, x0, 0.0, -res, y1)
        out = np.zeros((4, dh, dw), np.uint8)
        reproject(rgba, out, src_transform=src_transform, src_crs=self.crs, dst_transform=dst_transform,
                  dst_crs="EPSG:3857", resampling=Resampling.bilinear, init_dest_nodata=False)
        out[3][out[3] < 128] = 0  # bilinear alpha at the image's edge: keep it crisp
        out[3][out[3] >= 128] = 255
        return np.ascontiguousarray(out.transpose(1, 2, 0)), (float(x0), float(y1 - dh * res), float(x0 + dw * res),
                                                              float(y1))

    def close(self) -> None:
        ds = getattr(self, "ds", None)
        if ds is not None and not ds.closed:
            ds.close()

    def __enter__(self) -> ImagerySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OccupiedCells:
    """Which cells of a tile grid hold any valid pixel, so that a mostly empty raster is not read cell by
    cell (two small reads per cell cost about 0.2 ms each: minutes for millions of empty cells).

    The dataset mask (nodata, alpha or internal mask) is read one strip of tile rows about a block high at
    a time, at full resolution, so the answer is exact: a cell without any valid pixel would have a valid
    fraction of 0 in :meth:`ImagerySource.read_tile` too, and skipping it changes nothing. Only the current
    strip is kept (memory stays bounded whatever the grid); builds visit cells in row-major order.
    """

    MAX_READ_BYTES = 32 * 2**20  # one mask read; wide strips are read in column chunks

    def __init__(self, src: ImagerySource, grid: TileGrid) -> None:
        self.src, self.grid = src, grid
        self.strip_rows = max(1, src.ds.block_shapes[0][0] // grid.tile_h)
        self._first_row = -1
        self._strip = np.zeros((0, grid.cols), bool)

    def __call__(self, col: int, row: int) -> bool:
        """Whether cell (col, row) has at least one valid pixel."""
        if not self._first_row <= row < self._first_row + self._strip.shape[0]:
            self._read_strip(row - row % self.strip_rows)
        return bool(self._strip[row - self._first_row, col])

    def _read_strip(self, first_row: int) -> None:
        g = self.grid
        rows = min(g.rows, first_row + self.strip_rows) - first_row
        height = rows * g.tile_h
        strip = np.zeros((rows, g.cols), bool)
        step = max(1, self.MAX_READ_BYTES // (height * g.tile_w))
        for c0 in range(0, g.cols, step):
            cols = min(g.cols, c0 + step) - c0
            window = Window(c0 * g.tile_w, first_row * g.tile_h, cols * g.tile_w, height)
            try:
                mask = self.src.ds.dataset_mask(window=window)
            except RasterioError as err:
                raise ImageFileError(self.src.path, f"read failed near pixel ({int(window.col_off)}, "
                                     f"{int(window.row_off)}) ({_short(err)}): truncated or corrupt",
                                     "re-copy or re-export the GeoTIFF; the tiles built so far are kept") from None
            strip[:, c0:c0 + cols] = mask.reshape(rows, g.tile_h, cols, g.tile_w).any(axis=(1, 3))
        self._first_row, self._strip = first_row, strip


def _lonlat_bounds(src: ImagerySource) -> tuple[float, float, float, float]:
    """WGS84 bounds of the raster from points along its edges (a projected raster's edges curve)."""
    n = 33
    t = np.linspace(0, 1, n)
    px = np.concatenate([t * src.width, np.full(n, src.width), t * src.width, np.zeros(n)])
    py = np.concatenate([np.zeros(n), t * src.height, np.full(n, src.height), t * src.height])
    lon, lat = to_lonlat(src.crs, *apply_affine(src.transform, px, py))
    ok = np.isfinite(lon) & np.isfinite(lat)
    # An image across the antimeridian gets bounds such as (179.5, .., 180.5, ..), not the whole world;
    # its west edge in [-180, 180) is the rule the app's map places the tiles by.
    lon = np.where(ok, lon, np.nan)
    lon = contiguous_lon(lon)
    return float(lon[ok].min()), float(lat[ok].min()), float(lon[ok].max()), float(lat[ok].max())


def thumbnail_jpeg(rgb: np.ndarray, size: int, quality: int = 85) -> bytes:
    """A tile's thumbnail as JPEG bytes, ``size`` px on a side."""
    import io

    img = Image.fromarray(rgb)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _short(err: BaseException) -> str:
    """The last line of GDAL's message (rasterio chains the real cause behind "Read failed")."""
    if err.__cause__ is not None and "previous exception" in str(err):
        err = err.__cause__
    return brief(err, last_line=True)
