"""A map layer (one value per tile) as a raster: one pixel per tile on the tiles' own grid, in the imagery's
CRS, or reprojected to EPSG:4326; written as a Cloud-Optimized GeoTIFF with rio-cogeo.

A source's tiles lie on a regular grid of its GeoTIFF, so (col, row) -> the tile's top-left corner in
the source CRS is an affine map. It is fitted (least squares, exact up to rounding) to the tiles'
footprint corners projected back into that CRS; the raster's pixel (row, col) is then exactly tile
(col, row)'s footprint. Tiles without a value and grid cells without a tile are nodata (NaN). In EPSG:4326 every
source is reprojected (nearest neighbour) onto one grid of a quarter tile per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.gis.output import ExportError, atomic_output

WGS84 = "EPSG:4326"
OVERSAMPLE = 4


@dataclass(frozen=True)
class LayerRaster:
    """A float32 raster (H, W) with NaN as nodata, its affine transform and CRS (a string)."""

    array: np.ndarray
    transform: object  # affine.Affine
    crs: str


def source_grid(atlas, source: int) -> tuple[object, int, int, np.ndarray]:
    """(affine (col, row) -> top-left corner in the source CRS, cols, rows, the source's tile indices)."""
    from affine import Affine
    from rasterio.warp import transform as warp

    info = atlas.sources[source]
    tiles = np.flatnonzero(np.asarray(atlas.tiles.source) == source)
    if tiles.size == 0:
        raise ExportError(info.path, "has no tiles in this atlas", "choose another --source")
    grid = np.asarray(atlas.tiles.grid[tiles], np.float64)
    fp = np.asarray(atlas.tiles.footprints[tiles], np.float64)
    # the four corners of every tile, at (col, row), (col+1, row), (col+1, row+1), (col, row+1)
    cols = np.concatenate([grid[:, 0], grid[:, 0] + 1, grid[:, 0] + 1, grid[:, 0]])
    rows = np.concatenate([grid[:, 1], grid[:, 1], grid[:, 1] + 1, grid[:, 1] + 1])
    xs, ys = warp(WGS84, info.crs, fp[:, :, 0].T.ravel().tolist(), fp[:, :, 1].T.ravel().tolist())
    design = np.stack([cols, rows, np.ones_like(cols)], axis=1)
    (a, b, c), *_ = np.linalg.lstsq(design, np.asarray(xs), rcond=None)
    (d, e, f), *_ = np.linalg.lstsq(design, np.asarray(ys), rcond=None)
    n_cols, n_rows = int(grid[:, 0].max()) + 1, int(grid[:, 1].max()) + 1
    return Affine(a, b, c, d, e, f), n_cols, n_rows, tiles


def layer_raster(atlas, values: np.ndarray, crs: str | None = None, source: int | None = None) -> LayerRaster:
    """The per-tile ``values`` (N,) as a raster.

    Args:
        atlas: an opened :class:`engine.atlas.Atlas`.
        values: one value per tile (NaN: no value).
        crs: None for the imagery's own CRS (one source only, or ``source``), or ``EPSG:4326`` (every
            source reprojected onto one grid, nearest neighbour).
        source: the imagery source to export in its own CRS.
    Raises:
        ExportError: no tiles, or several sources in their own CRSs.
    """
    values = np.asarray(values, np.float32)
    if len(values) != len(atlas.tiles):
        raise ExportError("--layer", f"has {len(values)} values for {len(atlas.tiles)} tiles", "use the atlas's layer")
    sources = [source] if source is not None else sorted({int(s) for s in np.unique(atlas.tiles.source)})
    if not sources:
        raise ExportError(atlas.path, "has no tiles", "add imagery with 'soundscape-engine atlas build --imagery'")
    grids = []
    for s in sources:
        affine, n_cols, n_rows, tiles = source_grid(atlas, s)
        array = np.full((n_rows, n_cols), np.nan, np.float32)
        g = np.asarray(atlas.tiles.grid[tiles])
        array[g[:, 1], g[:, 0]] = values[tiles]
        grids.append((array, affine, atlas.sources[s].crs))
    if crs is None:
        if len(grids) > 1:
            raise ExportError("--crs", f"the atlas has {len(grids)} imagery sources in their own CRSs",
                              "export one with --source, or all with --crs EPSG:4326")
        return LayerRaster(*grids[0])
    return _reproject(grids, crs)


def _reproject(grids: list[tuple[np.ndarray, object, str]], crs: str) -> LayerRaster:
    from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

    bounds, resolution = [], []
    for array, affine, src_crs in grids:
        h, w = array.shape
        x0, y0 = affine @ (0, 0)
        x1, y1 = affine @ (w, h)
        bounds.append(transform_bounds(src_crs, crs, min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        t, _, _ = calculate_default_transform(src_crs, crs, w, h, min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        resolution.append(abs(t.a))
    west, south = min(b[0] for b in bounds), min(b[1] for b in bounds)
    east, north = max(b[2] for b in bounds), max(b[3] for b in bounds)
    # 4 pixels per tile side: a reprojected tile's footprint is a rotated square, and at one pixel per tile
    # a pixel's centre could fall into the neighbouring tile; at a quarter it always lands in its own
    res = min(resolution) / OVERSAMPLE
    from affine import Affine

    width, height = max(1, int(np.ceil((east - west) / res))), max(1, int(np.ceil((north - south) / res)))
    dst_transform = Affine(res, 0.0, west, 0.0, -res, north)
    out = np.full((height, width), np.nan, np.float32)
    for array, affine, src_crs in grids:
        part = np.full_like(out, np.nan)
        reproject(array, part, src_transform=affine, src_crs=src_crs, dst_transform=dst_transform, dst_crs=crs,
                  resampling=Resampling.nearest, src_nodata=np.nan, dst_nodata=np.nan)
        fill = np.isnan(out) & ~np.isnan(part)
        out[fill] = part[fill]
    return LayerRaster(out, dst_transform, crs)


def write_cog(path: str | Path, raster: LayerRaster, name: str = "value", description: str = "") -> Path:
    """Write ``raster`` as a Cloud-Optimized GeoTIFF (float32, DEFLATE, NaN nodata), atomically.

    Raises:
        ExportError: the file cannot be written.
    """
    import rasterio
    from rasterio.io import MemoryFile
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    path = Path(path)
    h, w = raster.array.shape
    profile = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": "float32", "crs": raster.crs,
               "transform": raster.transform, "nodata": float("nan")}
    cog = cog_profiles.get("deflate")
    cog.update(blockxsize=256, blockysize=256, predictor=3)  # 3: floating-point predictor
    with atomic_output(path) as tmp:
        try:
            with MemoryFile() as memory:
                with memory.open(**profile) as ds:
                    ds.write(raster.array, 1)
                    ds.set_band_description(1, name)
                    ds.update_tags(layer=name, description=description)
                with memory.open() as src:
                    cog_translate(src, str(tmp), cog, nodata=float("nan"),
                                  in_memory=True, quiet=True, additional_cog_metadata={"layer": name})
        except rasterio.errors.RasterioError as err:
            raise ExportError(path, f"cannot be written ({err})", "choose a writable folder with free space") from None
    return path
