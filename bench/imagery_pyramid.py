"""The imagery pyramid of one large source (engine.atlas.imagery_pyramid) and the map over it: how fast it
is made from the thumbnails, its size beside them, and, in the app (offscreen), frame times and how long
a view takes to be sharp while zooming from the whole source down to single tiles.

    python bench/imagery_pyramid.py [--side 500]

The atlas is one source of side x side tiles (0.002 degrees, ~140 m, near 50 N) written directly (no
model run: random embeddings of the demo bundle's size), each tile's 128 px JPEG thumbnail a different
photo-like texture, and a 2048 px overview, as a build of a large orthophoto leaves it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _thumbnails(count: int, seed: int = 0) -> list[bytes]:
    """Photo-like 128 px JPEGs: smooth colour fields with noise (as many distinct ones as asked)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    for _ in range(count):
        base = rng.uniform(40, 200, 3)
        grad = rng.normal(0, 40, (2, 3))
        img = base + xx[..., None] * grad[0] + yy[..., None] * grad[1] + rng.normal(0, 12, (128, 128, 3))
        buf = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def make_atlas(root: Path, side: int) -> Path:
    from PIL import Image

    from engine.atlas.writer import AtlasWriter
    from engine.bundle.format import load_bundle
    from engine.geo import lonlat_to_web_mercator

    bundle = load_bundle(ROOT / "resources" / "demo-bundle")
    pool = _thumbnails(256)
    rng = np.random.default_rng(1)
    deg, west, north = 0.002, 8.0, 50.5
    with AtlasWriter(root, bundle, {"thumbnail_px": 128, "part_tiles": side}) as w:
        entry = w.add_source({"index": 0, "path": "/orthophoto.vrt", "status": "building", "tiles": 0,
                              "tile_px": [1000, 1000], "cols": side, "rows": side, "overview": None})
        for r in range(side):  # one row of tiles a part, as a build commits them
            c = np.arange(side)
            x0, y0 = west + c * deg, np.full(side, north - r * deg)
            fp = np.stack([np.stack([x0, y0], 1), np.stack([x0 + deg, y0], 1), np.stack([x0 + deg, y0 - deg], 1),
                           np.stack([x0, y0 - deg], 1)], axis=1)
            thumbs = [pool[(r * 7 + k * 13) % len(pool)] for k in range(side)]
            w.append_tiles(x0 + deg / 2, y0 - deg / 2, fp, 0, np.stack([c, np.full(side, r)], 1), thumbs,
                           rng.normal(size=(side, bundle.embedding_dim)).astype(np.float32))
            entry["tiles"] += side
        (x0m, x1m), (y0m, y1m) = lonlat_to_web_mercator([west, west + side * deg], [north - side * deg, north])
        (root / "overviews").mkdir(exist_ok=True)
        grey = np.full((2048, 2048, 4), 255, np.uint8)
        grey[..., :3] = 120
        Image.fromarray(grey, "RGBA").save(root / "overviews" / "source-0.png")
        entry["overview"] = {"file": "overviews/source-0.png", "bounds_3857": [x0m, y0m, x1m, y1m]}
        entry["status"] = "complete"
        w.commit()
    from engine.atlas.tile_index import update_tile_index

    update_tile_index(root)
    return root


def app_zoom(root: Path) -> dict:
    """Zoom from the whole source to single tiles: frame times, and how long each view takes to be sharp."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QRectF
    from PySide6.QtWidgets import QApplication

    from app.services.map_layout import layout_atlas
    from app.services.map_overviews import SourceOverviews
    from app.widgets.map_view import MapView
    from engine.atlas import open_atlas

    app = QApplication.instance() or QApplication([])
    atlas = open_atlas(root)
    layout = layout_atlas(atlas)
    provider = SourceOverviews.of_atlas(atlas)
    view = MapView()
    view.resize(1200, 800)
    view.show()
    view.set_atlas(layout, [], (np.zeros(0), np.zeros(0)), lambda i: atlas.thumbnail(i), None, provider)
    app.processEvents()
    west, south, east, north = layout.bounds
    frames, fills, steps = [], [], []
    for i in range(14):  # halving the view each step, around a point off the centre
        side = (east - west) * 0.5 ** i
        cx, cy = west + (east - west) * 0.37, south + (north - south) * 0.61
        t = time.perf_counter()
        view.view.setRange(QRectF(cx - side / 2, cy - side / 2, side, side), padding=0)
        app.processEvents()
        view.canvas.grab()
        frames.append(time.perf_counter() - t)
        start = time.perf_counter()
        while True:  # the event loop's turns until the view is complete (decodes run in the background)
            view._detail_timer.stop()
            t = time.perf_counter()
            view._update_detail()
            pending = view._detail_timer.isActive()
            view._detail_timer.stop()
            view.canvas.grab()
            frames.append(time.perf_counter() - t)
            if not pending:
                break
            time.sleep(0.003)
        fills.append(time.perf_counter() - start)
        steps.append({"view_km": round(side * 0.64 / 1000, 2), "chunks": len(view.chunks_shown()),
                      "levels": sorted({k[1] for k in view.chunks_shown()}), "tiles_drawn": len(view.visible_detail()),
                      "sharp_after_ms": round(1000 * fills[-1])})
    view.stop_timers()
    view.close()
    return {"frame_ms_max": 1000 * max(frames), "frame_ms_median": 1000 * float(np.median(frames)),
            "sharp_after_ms_max": 1000 * max(fills), "steps": steps}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=500, help="tiles a side (default 500: 250,000 tiles)")
    a = p.parse_args()
    from engine.atlas.imagery_pyramid import PYRAMID_FOLDER, read_pyramid_meta, update_imagery_pyramid

    with tempfile.TemporaryDirectory() as tmp:
        root = make_atlas(Path(tmp) / "atlas", a.side)
        n = a.side ** 2
        t = time.perf_counter()
        update_imagery_pyramid(root)
        took = time.perf_counter() - t
        meta = read_pyramid_meta(root)
        spec = meta["sources"]["0"]
        size = sum(f.stat().st_size for f in (root / PYRAMID_FOLDER).rglob("*.webp"))
        thumbs = (root / "thumbnails.bin").stat().st_size
        print(f"{n:,} tiles in one source: pyramid made in {took:.1f} s ({n / took:,.0f} tiles/s), "
              f"{len(spec['levels'])} levels, {sum(map(len, spec['levels']))} chunks, {size / 1e6:.0f} MB "
              f"({size / thumbs:.0%} of the thumbnails' {thumbs / 1e6:.0f} MB)")
        result = app_zoom(root)
        for step in result.pop("steps"):
            print("  ", json.dumps(step))
        print(json.dumps({k: round(v, 1) for k, v in result.items()}))


if __name__ == "__main__":
    main()
