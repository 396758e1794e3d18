"""Exports of the map and its results to the tools users know (torch-free; the app may use them):

- :mod:`engine.gis.raster`: a map layer (per-tile values) as a Cloud-Optimized GeoTIFF (rio-cogeo), in
  the imagery's CRS or EPSG:4326;
- :mod:`engine.gis.vector`: the tiles with their values as a GeoPackage of polygons (pyogrio);
- :mod:`engine.gis.tables`: matches and a tile's recordings as CSV and as a Raven Pro selection table,
  per-tile values as CSV;
- :mod:`engine.gis.figures`: PNGs of a map layer (legend, scale bar) and of a spectrogram (matplotlib: the
  engine extra, for the command line; the app renders its own).

Every file is written atomically (:func:`engine.gis.output.atomic_output`): a read-only or full folder
gives one :class:`ExportError` line and leaves nothing half-written.
"""

from engine.gis.output import ExportError, atomic_output

__all__ = ["ExportError", "atomic_output"]
