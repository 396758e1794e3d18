"""PNG pictures for reports (matplotlib, the engine extra; the command line uses them, the app draws its own).

- :func:`map_png`: a map layer on the tiles' grid with a colour bar (legend) and a scale bar;
- :func:`spectrogram_png`: a recording's spectrogram with time and frequency axes and a dB colour bar.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from engine.gis.output import ExportError, atomic_output
from engine.gis.raster import layer_raster


def _nice_length(metres: float) -> float:
    """A round scale-bar length near a fifth of ``metres``."""
    target = metres / 5
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target) if target >= 1 else 1.0


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_output(path) as tmp:
        try:
            fig.savefig(tmp, format="png", dpi=120)
        finally:
            plt.close(fig)
    return path


def map_png(path: str | Path, atlas, values: np.ndarray, title: str, label: str = "") -> Path:
    """The per-tile ``values`` as a map (one source in its CRS, several in Web Mercator) with a colour bar
    and a scale bar. NaN tiles are left blank ("no value")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rasterio.crs import CRS

    sources = np.unique(np.asarray(atlas.tiles.source))
    raster = layer_raster(atlas, values, crs=None if len(sources) == 1 else "EPSG:3857")
    crs = CRS.from_user_input(raster.crs)
    h, w = raster.array.shape
    t = raster.transform
    x0, y0 = t @ (0, 0)
    x1, y1 = t @ (w, h)
    scale = 1.0  # ground metres per map unit
    if crs.is_geographic:
        scale = 111_320.0 * math.cos(math.radians(float(np.nanmean(atlas.tiles.lat))))
    elif crs.to_epsg() == 3857:
        scale = math.cos(math.radians(float(np.nanmean(atlas.tiles.lat))))
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    finite = raster.array[np.isfinite(raster.array)]
    if finite.size == 0:
        plt.close(fig)
        raise ExportError(path, f"layer {title!r} has no value on any tile", "choose another layer")
    image = ax.imshow(np.ma.masked_invalid(raster.array), extent=(min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)),
                      origin="upper" if t.e < 0 else "lower", cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label=label or title, shrink=0.85)
    width_m = abs(x1 - x0) * scale
    bar_m = _nice_length(width_m)
    bar_units = bar_m / scale
    bx, by = min(x0, x1) + 0.05 * abs(x1 - x0), min(y0, y1) + 0.05 * abs(y1 - y0)
    ax.plot([bx, bx + bar_units], [by, by], color="black", linewidth=4, solid_capstyle="butt")
    ax.plot([bx, bx + bar_units], [by, by], color="white", linewidth=2, solid_capstyle="butt")
    ax.text(bx + bar_units / 2, by + 0.02 * abs(y1 - y0), f"{bar_m / 1000:g} km" if bar_m >= 1000 else f"{bar_m:g} m",
            ha="center", va="bottom", fontsize=9, bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
    ax.set_title(title)
    ax.set_xlabel(f"x ({crs.to_string()}, m)" if not crs.is_geographic else "longitude (°)")
    ax.set_ylabel("y (m)" if not crs.is_geographic else "latitude (°)")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    return _save(fig, Path(path))


def spectrogram_png(path: str | Path, audio: str | Path, max_hz: float | None = None) -> Path:
    """A recording's power spectrogram (Hann, 1024 samples, half overlap, dB) with axes and a colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.signal import spectrogram

    from engine.audio import load_audio

    samples, rate = load_audio(audio)
    f, t, sxx = spectrogram(samples, rate, window="hann", nperseg=1024, noverlap=512)
    db = 10 * np.log10(np.maximum(sxx, 1e-20))
    top = db.max()
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    mesh = ax.pcolormesh(t, f, db, vmin=top - 90, vmax=top, shading="auto", cmap="magma")
    ax.set_ylim(0, max_hz or rate / 2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(Path(audio).name)
    fig.colorbar(mesh, ax=ax, label="power (dB)")
    fig.tight_layout()
    return _save(fig, Path(path))
