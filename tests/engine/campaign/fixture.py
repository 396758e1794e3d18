"""A tiny recorder campaign in the contract's format (CAMPAIGN-FORMAT.md), generated with a seed.

Sites lie on a grid in UTM zone 32N (EPSG:32632); the orthophoto is a GeoTIFF in that CRS whose texture
differs from site to site; each site has a few WAV files of a site-specific tone in noise, so a model can
learn to pair them. Written through ``engine.campaign.write_campaign``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import rasterio
import soundfile as sf
from pyproj import Transformer
from rasterio.transform import from_origin

from engine.campaign import Campaign, CampaignRecording, Site, write_campaign

UTM = "EPSG:32632"
ORIGIN = (500_000.0, 5_000_000.0)  # UTM metres of the grid's south-west site


def site_xy(n_sites: int, spacing_m: float) -> list[tuple[float, float]]:
    cols = int(np.ceil(np.sqrt(n_sites)))
    return [(ORIGIN[0] + (k % cols) * spacing_m, ORIGIN[1] + (k // cols) * spacing_m) for k in range(n_sites)]


def write_ortho(path: Path, xy: list[tuple[float, float]], pixel_m: float = 4.0, margin_m: float = 400.0,
                seed: int = 0) -> None:
    """An RGB GeoTIFF around the sites: smooth noise plus a colour per site's neighbourhood."""
    rng = np.random.default_rng(seed)
    xs, ys = [p[0] for p in xy], [p[1] for p in xy]
    west, north = min(xs) - margin_m, max(ys) + margin_m
    w = int((max(xs) + margin_m - west) / pixel_m)
    h = int((north - (min(ys) - margin_m)) / pixel_m)
    gx, gy = np.meshgrid(west + (np.arange(w) + 0.5) * pixel_m, north - (np.arange(h) + 0.5) * pixel_m)
    nearest = np.argmin([(gx - x) ** 2 + (gy - y) ** 2 for x, y in xy], axis=0)
    palette = rng.integers(30, 230, size=(len(xy), 3))
    img = palette[nearest].transpose(2, 0, 1).astype(np.float64)
    img += rng.normal(0, 12, size=img.shape)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs=UTM,
                       transform=from_origin(west, north, pixel_m, pixel_m)) as dst:
        dst.write(np.clip(img, 0, 255).astype(np.uint8))


def make_campaign(root: Path, n_sites: int = 10, files_per_site: int = 2, seconds: float = 6.0,
                  rate: int = 8000, spacing_m: float = 300.0, seed: int = 0) -> Path:
    """Write ``root/recordings``, ``root/ortho.tif`` and the campaign folder ``root/campaign``; returns it."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    xy = site_xy(n_sites, spacing_m)
    write_ortho(root / "ortho.tif", xy, seed=seed)
    to_wgs = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    recordings, sites = [], []
    rec_root = root / "recordings"
    t = np.arange(int(seconds * rate)) / rate
    start = datetime(2019, 5, 22, 4, 0, tzinfo=UTC)
    for k, (x, y) in enumerate(xy):
        name = f"S{k:02d}"
        lon, lat = to_wgs.transform(x, y)
        folder = rec_root / name
        folder.mkdir(parents=True, exist_ok=True)
        freq = 300.0 + 250.0 * k
        for j in range(files_per_site):
            when = start + timedelta(hours=2 * j)
            path = folder / f"{when:%Y%m%d_%H%M%S}.WAV"
            wave = 0.3 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6)) + 0.05 * rng.normal(size=t.size)
            sf.write(path, wave.astype(np.float32), rate, subtype="PCM_16")
            recordings.append(CampaignRecording(
                path=path, site=name, recorder=f"AM{k:02d}", recorder_model="audiomoth", lon=lon, lat=lat,
                position_source="sites", start_utc=when, start_local=when.astimezone(timezone(timedelta(hours=2))),
                timezone="+02:00", duration_s=seconds, sample_rate=rate, channels=1))
        sites.append(Site(name, lon, lat, files_per_site, files_per_site * seconds / 3600, True))
    out = root / "campaign"
    campaign = Campaign(root=out, recordings_root=rec_root, imagery=[root / "ortho.tif"], timezone=None,
                        recordings=recordings, sites=sites,
                        summary={"files": len(recordings), "usable": len(recordings), "skipped": 0, "sites": n_sites})
    write_campaign(out, campaign, [])
    return out
