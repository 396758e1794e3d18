"""Which sites lie inside the imagery: each site's lon/lat transformed into each image's own CRS and tested
against its bounds (the imagery may be in any CRS: a national grid, UTM, or geographic). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import ImageFileError


@dataclass(frozen=True)
class Footprint:
    path: Path
    crs: str
    bounds: tuple[float, float, float, float]  # left, bottom, right, top in ``crs``


def read_footprints(paths: list[Path]) -> list[Footprint]:
    """Open each image's header.

    Raises:
        ImageFileError: a missing, unreadable or non-georeferenced image (naming it).
    """
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    out = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ImageFileError(path, "not found", "give the path of an existing GeoTIFF")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)  # refused below, in one line
                ds = rasterio.open(path)
            with ds:
                crs, transform, bounds = ds.crs, ds.transform, ds.bounds
        except RasterioIOError as err:
            raise ImageFileError(path, f"unreadable ({str(err).splitlines()[0]})",
                                 "give a GeoTIFF (or another raster GDAL reads)") from None
        if crs is None or transform.is_identity:
            raise ImageFileError(path, "not georeferenced (no CRS or no geotransform)",
                                 "give a GeoTIFF with its CRS, e.g. export it again from your GIS, or add a "
                                 ".tfw/.aux.xml with the georeferencing")
        out.append(Footprint(path, crs.to_string(), (bounds.left, bounds.bottom, bounds.right, bounds.top)))
    return out


def inside_mask(footprint: Footprint, lons: list[float], lats: list[float]) -> list[bool]:
    """For each lon/lat (WGS 84), whether it lies inside the image's bounds."""
    from rasterio.warp import transform

    if not lons:
        return []
    xs, ys = transform("EPSG:4326", footprint.crs, list(lons), list(lats))
    left, bottom, right, top = footprint.bounds
    return [left <= x <= right and bottom <= y <= top for x, y in zip(xs, ys, strict=True)]
