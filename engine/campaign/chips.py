"""Image chips of a campaign's sites, cut from its imagery (torch-free).

A site's chip is a square on the ground centred at the site: ``ground_m`` wide, ``px`` pixels, north up.
It is cut by reprojecting the imagery (any CRS rasterio reads) into a local azimuthal-equidistant grid
around the site, so the chip is square on the ground and centred on the site whatever the imagery's
projection (a UTM scene, a national grid, Web Mercator tiles). The first image of the campaign that covers
at least ``min_valid`` of the chip wins. Chips are cached on disk per campaign and chip size, because
reprojecting a large orthophoto for every epoch would cost more than training a small model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ImageFileError
from engine.progress import Job

log = logging.getLogger(__name__)
CHIPS_VERSION = 1


def site_crs_wkt(lon: float, lat: float) -> str:
    """A local azimuthal-equidistant CRS centred on a site (metres; true distances from the site)."""
    return f"+proj=aeqd +lat_0={lat:.10f} +lon_0={lon:.10f} +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"


def chip_grid(ground_m: float, px: int) -> tuple[object, float]:
    """The chip's affine transform in the site's local CRS (the site at the centre) and its pixel size."""
    from rasterio.transform import from_origin

    res = ground_m / px
    return from_origin(-ground_m / 2, ground_m / 2, res, res), res


def _to_uint8(band: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Imagery that is not 8-bit (e.g. 16-bit satellite bands) stretched by the chip's 2-98 % range."""
    if band.dtype == np.uint8:
        return band
    values = band[valid]
    if values.size == 0:
        return np.zeros(band.shape, np.uint8)
    lo, hi = np.percentile(values, [2, 98])
    scaled = (band.astype(np.float64) - lo) / max(float(hi - lo), 1e-9) * 255.0
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def cut_chip(image: str | Path, lon: float, lat: float, ground_m: float, px: int) -> tuple[np.ndarray, float]:
    """Cut one site's chip from one image.

    Args:
        image: a georeferenced raster (GeoTIFF or anything rasterio opens) with a CRS.
        lon, lat: the site (WGS84 degrees).
        ground_m: the chip's ground width in metres.
        px: the chip's width in pixels.
    Returns:
        (chip as (px, px, 3) uint8 RGB, the fraction of the chip the image covers with valid pixels).
    Raises:
        ImageFileError: an unreadable raster or one without a CRS.
    """
    import rasterio
    from rasterio.errors import RasterioError
    from rasterio.warp import Resampling, reproject

    dst_transform, res = chip_grid(ground_m, px)
    dst_crs = site_crs_wkt(lon, lat)
    try:
        with rasterio.open(image) as src:
            if src.crs is None:
                raise ImageFileError(image, "has no coordinate reference system",
                                     "georeference it (e.g. gdal_translate -a_srs) before scanning the campaign")
            bands = [1, 2, 3] if src.count >= 3 else [1, 1, 1]
            src_res = min(abs(src.res[0]), abs(src.res[1]))
            # Much finer imagery is averaged (no aliasing); coarser or similar imagery is interpolated.
            resampling = Resampling.average if src_res < 0.67 * res else Resampling.bilinear
            chip = np.zeros((3, px, px), dtype=src.dtypes[0])
            for k, band in enumerate(bands):
                reproject(rasterio.band(src, band), chip[k], dst_transform=dst_transform, dst_crs=dst_crs,
                          dst_nodata=0, resampling=resampling)
            mask = np.zeros((px, px), np.uint8)
            reproject(src.dataset_mask(), mask, src_transform=src.transform, src_crs=src.crs,
                      dst_transform=dst_transform, dst_crs=dst_crs, dst_nodata=0, resampling=Resampling.nearest)
    except RasterioError as err:
        raise ImageFileError(image, f"unreadable raster ({err})", "check the file or leave it out") from None
    valid = mask > 0
    rgb = np.stack([_to_uint8(chip[k], valid) for k in range(3)], axis=-1)
    return np.ascontiguousarray(rgb), float(valid.mean())


@dataclass
class SiteChips:
    """Chips of a campaign's sites. ``chips[i]`` belongs to ``sites[i]``; ``missing`` lists sites no image covers."""

    sites: list[str]
    chips: np.ndarray                # (N, px, px, 3) uint8; zeros for a missing site
    sources: list[str | None]        # the image each chip was cut from
    missing: list[str]
    folder: Path | None = None

    def chip(self, site: str) -> np.ndarray:
        return np.asarray(self.chips[self.sites.index(site)])


def chips_fingerprint(sites: Sequence[tuple[str, float, float]], imagery: Sequence[Path], ground_m: float,
                      px: int, min_valid: float) -> str:
    """A hash of everything that changes the chips: sites, imagery files (path, size, time), size."""
    h = hashlib.sha256()
    files = []
    for path in imagery:
        try:
            stat = Path(path).stat()
            files.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
        except OSError:
            files.append([str(path), None, None])
    h.update(json.dumps({"version": CHIPS_VERSION, "imagery": files, "ground_m": round(float(ground_m), 6),
                         "px": int(px), "min_valid": min_valid,
                         "sites": [[s, round(lo, 9), round(la, 9)] for s, lo, la in sites]}).encode())
    return h.hexdigest()[:24]


def cut_site_chips(sites: Sequence[tuple[str, float, float]], imagery: Sequence[Path], ground_m: float, px: int,
                   min_valid: float = 0.5, job: Job | None = None) -> SiteChips:
    """Cut every site's chip from the first image that covers at least ``min_valid`` of it.

    Args:
        sites: (name, lon, lat) of each site.
        imagery: the campaign's rasters, in order of preference.
        ground_m, px: the chips' ground width (m) and size (pixels).
        min_valid: the least covered fraction of a chip that counts.
        job: progress and cancellation.
    """
    chips = np.zeros((len(sites), px, px, 3), np.uint8)
    sources: list[str | None] = [None] * len(sites)
    missing = []
    for i, (name, lon, lat) in enumerate(sites):
        if job is not None:
            job.check()
            job.report(i, len(sites), "cutting image chips at the sites")
        best = 0.0
        for image in imagery:
            chip, covered = cut_chip(image, lon, lat, ground_m, px)
            if covered >= min_valid:
                chips[i], sources[i] = chip, str(image)
                break
            best = max(best, covered)
        else:
            missing.append(name)
            log.warning("site %s: no imagery covers it (best %.0f %% of its %.0f m chip)", name, best * 100, ground_m)
    return SiteChips([s[0] for s in sites], chips, sources, missing)


def cached_site_chips(cache_root: Path, sites: Sequence[tuple[str, float, float]], imagery: Sequence[Path],
                      ground_m: float, px: int, min_valid: float = 0.5, job: Job | None = None) -> SiteChips:
    """:func:`cut_site_chips`, kept in ``cache_root/chips-<fingerprint>/`` (``chips.npy``, ``index.json``).

    The folder is written under a temporary name and renamed when complete.
    """
    folder = Path(cache_root) / f"chips-{chips_fingerprint(sites, imagery, ground_m, px, min_valid)}"
    if (folder / "index.json").is_file():
        index = json.loads((folder / "index.json").read_text())
        return SiteChips(index["sites"], np.load(folder / "chips.npy", mmap_mode="r"), index["sources"],
                         index["missing"], folder)
    result = cut_site_chips(sites, imagery, ground_m, px, min_valid, job)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "chips.npy", result.chips)
    (tmp / "index.json").write_text(json.dumps({
        "sites": result.sites, "sources": result.sources, "missing": result.missing, "ground_m": ground_m,
        "px": px, "crs": "local azimuthal equidistant per site, north up"}))
    if folder.exists():  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, folder)
    result.folder = folder
    return result
