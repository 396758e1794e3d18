"""One small picture of all of an atlas's imagery, for the map zoomed out (torch-free; Pillow).

Each imagery source has its own overview (``overviews/source-<k>.png``, at most 2048 px a side). An atlas of
a region or a country is thousands of sources: the map cannot decode thousands of overviews to show the
whole atlas, and each would be a few pixels on screen anyway. So, at the end of a build, the sources'
overviews are composited into one Web Mercator image of at most :data:`MOSAIC_MAX_PX` a side
(``map/overviews.png``, placed by ``map/overviews.json``). The map draws it beneath everything and draws a
source's own overview only when few sources are in view (see ``app.services.map_overviews``).

It is rebuilt only when the sources' overviews change: new sources inside the mosaic's extent are
composited onto it; a source outside that extent means a new extent and a full rebuild.
"""

from __future__ import annotations

import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from engine import files
from engine.atlas.format import DAMAGED_FIX
from engine.atlas.source_log import LOG_KEY, read_source_log

log = logging.getLogger(__name__)

MOSAIC_FILE = "map/overviews.png"
MOSAIC_META = "map/overviews.json"
MOSAIC_FORMAT = "soundscape-overview-mosaic"
MOSAIC_MAX_PX = 4096
MIN_SOURCES = 2  # one source's own overview is already the picture of the atlas


def _sources(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The sources that have an overview: index, file, bounds (EPSG:3857)."""
    out = []
    for s in manifest.get("sources", []):
        ov = s.get("overview")
        if ov and ov.get("file") and ov.get("bounds_3857"):
            out.append({"index": int(s["index"]), "file": str(ov["file"]), "bounds": [float(v) for v in ov["bounds_3857"]]})
    return out


def read_mosaic_meta(root: str | Path) -> dict[str, Any] | None:
    """The mosaic's placement and the sources in it, or None when the atlas has none (or it is unreadable)."""
    try:
        meta = json.loads((Path(root) / MOSAIC_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != MOSAIC_FORMAT or not (Path(root) / MOSAIC_FILE).is_file():
        return None
    return meta


def _composite(mosaic: Any, root: Path, source: dict[str, Any], extent: list[float], res: float) -> None:
    from PIL import Image

    west, _, _, north = extent
    sw, ss, se, sn = source["bounds"]
    x0, y0 = (sw - west) / res, (north - sn) / res
    w, h = max(1, round((se - sw) / res)), max(1, round((sn - ss) / res))
    left, top = max(0, math.floor(x0)), max(0, math.floor(y0))
    try:
        with Image.open(root / source["file"]) as img:
            img.draft("RGBA", (w, h))  # a JPEG would decode smaller; a PNG decodes whole
            part = img.convert("RGBA").resize((w, h), Image.Resampling.BOX)
    except OSError as err:  # a damaged overview: the rest of the mosaic is still worth having
        log.warning("%s: overview unreadable (%s); left out of the mosaic", root / source["file"], err)
        return
    part = part.crop((0, 0, min(w, mosaic.width - left), min(h, mosaic.height - top)))
    mosaic.alpha_composite(part, dest=(left, top))


def update_overview_mosaic(root: str | Path) -> bool:
    """Bring the atlas's overview mosaic up to date with its sources' overviews; True when it was written.
    Call it while holding the atlas's lock (at the end of a build)."""
    from PIL import Image

    root = Path(root)
    manifest = json.loads((root / "atlas.json").read_text(encoding="utf-8"))
    if LOG_KEY in manifest:  # format version 3: the entries are in their own file
        manifest["sources"] = read_source_log(root, manifest[LOG_KEY], DAMAGED_FIX)
    sources = _sources(manifest)
    if len(sources) < MIN_SOURCES:
        return False
    bounds = np.array([s["bounds"] for s in sources])
    extent = [float(bounds[:, 0].min()), float(bounds[:, 1].min()), float(bounds[:, 2].max()), float(bounds[:, 3].max())]
    meta = read_mosaic_meta(root)
    done = {(s["index"], s["file"], tuple(s["bounds"])) for s in (meta or {}).get("sources", [])}
    key = lambda s: (s["index"], s["file"], tuple(s["bounds"]))  # noqa: E731
    new = [s for s in sources if key(s) not in done]
    if meta is not None and not new and len(done) == len(sources):
        return False
    grow = meta is None or len(done - {key(s) for s in sources}) > 0 or any(
        s["bounds"][0] < meta["extent"][0] or s["bounds"][1] < meta["extent"][1] or s["bounds"][2] > meta["extent"][2]
        or s["bounds"][3] > meta["extent"][3] for s in new)
    if grow:  # a new extent (or a source gone): composite everything again
        res = max(extent[2] - extent[0], extent[3] - extent[1]) / MOSAIC_MAX_PX
        width = max(1, math.ceil((extent[2] - extent[0]) / res))
        height = max(1, math.ceil((extent[3] - extent[1]) / res))
        mosaic = Image.new("RGBA", (width, height))
        todo = sources
    else:
        assert meta is not None
        extent, res = meta["extent"], float(meta["resolution"])
        with Image.open(root / MOSAIC_FILE) as img:
            mosaic = img.convert("RGBA")
        todo = new
    for s in todo:
        _composite(mosaic, root, s, extent, res)
    buf = io.BytesIO()
    mosaic.save(buf, "PNG", compress_level=1)  # as the sources' overviews (engine.atlas.build): speed over size
    data = buf.getvalue()
    files.atomic_write_bytes(root / MOSAIC_FILE, lambda f: f.write(data), len(data))
    placed = [extent[0], extent[3] - mosaic.height * res, extent[0] + mosaic.width * res, extent[3]]
    files.atomic_write_text(root / MOSAIC_META, json.dumps(
        {"format": MOSAIC_FORMAT, "format_version": 1, "extent": extent, "resolution": res,
         "bounds_3857": placed, "sources": sources}, indent=1))
    return True


def read_mosaic(root: str | Path) -> tuple[np.ndarray, tuple[float, float, float, float]] | None:
    """The mosaic as RGBA (h, w, 4) uint8 and its (west, south, east, north) in EPSG:3857, or None."""
    from PIL import Image

    meta = read_mosaic_meta(root)
    if meta is None:
        return None
    try:
        with Image.open(Path(root) / MOSAIC_FILE) as img:
            rgba = np.asarray(img.convert("RGBA"))
    except OSError as err:
        log.warning("%s: unreadable (%s)", Path(root) / MOSAIC_FILE, err)
        return None
    west, south, east, north = (float(v) for v in meta["bounds_3857"])
    return rgba, (west, south, east, north)
