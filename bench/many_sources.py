"""An atlas built from many small GeoTIFFs (a national orthophoto comes as thousands of files): total time
and the share spent in commits (atlas.json replaced atomically; since format 3 the changed source entries
are appended to sources.<k>.jsonl first, so a commit no longer grows with the number of sources).

    python bench/many_sources.py [--sources 1000] [--px 128]

Each source is a --px square GeoTIFF (2 m pixels, UTM 32N) tiled at 64 px with the shipped demo bundle.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import rasterio
    from rasterio.transform import Affine

    import engine.atlas.writer as writer
    from engine.atlas.build import build_atlas

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", type=int, default=1000)
    p.add_argument("--px", type=int, default=128)
    a = p.parse_args()
    spent = {"commits": 0, "seconds": 0.0}
    commit = writer.AtlasWriter.commit

    def timed(self: writer.AtlasWriter) -> None:
        t = time.perf_counter()
        commit(self)
        spent["commits"] += 1
        spent["seconds"] += time.perf_counter() - t

    writer.AtlasWriter.commit = timed  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        folder, rng = Path(tmp), np.random.default_rng(0)
        side = int(np.ceil(np.sqrt(a.sources)))
        tifs = []
        for k in range(a.sources):
            c, r = k % side, k // side
            path = folder / f"s{k}.tif"
            with rasterio.open(path, "w", driver="GTiff", width=a.px, height=a.px, count=3, dtype="uint8",
                               crs="EPSG:32632", transform=Affine(2.0, 0, 690000 + c * 2 * a.px, 0, -2.0,
                                                                  5340000 - r * 2 * a.px)) as dst:
                dst.write(rng.integers(0, 255, (3, a.px, a.px), dtype=np.uint8))
            tifs.append(path)
        t = time.perf_counter()
        report = build_atlas(folder / "atlas", ROOT / "resources" / "demo-bundle", imagery=tifs, tile_px=64,
                             search_index=False)
        took = time.perf_counter() - t
        size = (folder / "atlas" / "atlas.json").stat().st_size
        logs = sum(p.stat().st_size for p in (folder / "atlas").glob("sources.*.jsonl"))
    print(f"{a.sources} sources, {report.tiles_added} tiles: build {took:.1f} s; {spent['commits']} manifest "
          f"commits took {spent['seconds']:.1f} s ({spent['seconds'] / took:.0%}); atlas.json {size / 1e3:.0f} kB, "
          f"source log {logs / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
