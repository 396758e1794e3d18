"""The tiles with their values as a GeoPackage of polygons (pyogrio), in EPSG:4326 or the imagery's CRS.

Each tile is one polygon: its footprint (top-left, top-right, bottom-right, bottom-left, closed) as
recorded in the atlas; NaN values are written as null.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from engine.gis.output import ExportError, atomic_output

WGS84 = "EPSG:4326"


def polygon_wkb(ring: np.ndarray) -> bytes:
    """Well-known binary of a polygon with one ring ((n, 2) x, y; closed here)."""
    ring = np.asarray(ring, "<f8")
    if not np.array_equal(ring[0], ring[-1]):
        ring = np.vstack([ring, ring[:1]])
    return struct.pack("<BIII", 1, 3, 1, len(ring)) + ring.tobytes()


def write_tiles_gpkg(path: str | Path, atlas, columns: dict[str, np.ndarray], crs: str | None = WGS84,
                     tiles: np.ndarray | None = None, layer: str = "tiles") -> Path:
    """Write the tiles (all, or ``tiles``) with ``columns`` ({name: (N,) values}) as a GeoPackage.

    Args:
        crs: ``EPSG:4326`` (footprints as stored) or another CRS the footprints are projected into
            (e.g. the imagery's); None for the first source's own CRS.
    Raises:
        ExportError: nothing to write, or the file cannot be written.
    """
    from pyogrio.errors import DataSourceError
    from pyogrio.raw import write

    path = Path(path)
    tiles = np.arange(len(atlas.tiles)) if tiles is None else np.asarray(tiles)
    if tiles.size == 0:
        raise ExportError(atlas.path, "has no tiles to export", "add imagery first")
    footprints = np.asarray(atlas.tiles.footprints[tiles], np.float64)
    if crs is None:
        crs = atlas.sources[int(atlas.tiles.source[tiles[0]])].crs
    if crs != WGS84:
        from rasterio.warp import transform

        xs, ys = transform(WGS84, crs, footprints[:, :, 0].ravel().tolist(), footprints[:, :, 1].ravel().tolist())
        footprints = np.stack([np.reshape(xs, footprints.shape[:2]), np.reshape(ys, footprints.shape[:2])], axis=2)
    geometry = np.array([polygon_wkb(fp) for fp in footprints], dtype=object)
    fields = ["tile", "lon", "lat"] + list(columns)
    data = [np.asarray(atlas.tiles.ids[tiles], np.int64), np.asarray(atlas.tiles.lon[tiles], np.float64),
            np.asarray(atlas.tiles.lat[tiles], np.float64)]
    data += [np.asarray(values, np.float64)[tiles] for values in columns.values()]
    with atomic_output(path) as tmp:
        try:
            write(str(tmp), geometry, data, fields, layer=layer, driver="GPKG", geometry_type="Polygon", crs=crs,
                  nan_as_null=True)
        except (DataSourceError, RuntimeError) as err:
            raise ExportError(path, f"cannot be written ({err})", "choose a writable folder with free space") from None
    return path
