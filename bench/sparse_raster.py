"""How long finding the tiles of a mostly empty GeoTIFF takes (prints measured figures; never pass/fail).

  .venv/bin/python bench/sparse_raster.py                 # 20,000 x 20,000 px, --tile-px 32
  .venv/bin/python bench/sparse_raster.py --side 50000    # the issue's size (the file takes a while to write)

The raster is written with rasterio as a tiled (512 px), DEFLATE-compressed RGB GeoTIFF with nodata 0 and
six content blocks of 1,300 x 1,200 px; everything else is nodata. Both ways are the atlas build's tiling
loop without the embedding (the same for both): "cell by cell" reads every grid cell and tests its valid
fraction (the build before issue 12's fix; timed on the first --sample cells in build order and
extrapolated to the grid), "mask strips" first asks :class:`engine.atlas.imagery.OccupiedCells` and reads
only cells with data (timed on the whole grid).
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


def write_sparse_raster(path: Path, side: int, seed: int = 0) -> int:
    """Write the raster; returns the number of content pixels."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32633", "transform": Affine(0.5, 0, 500000, 0, -0.5, 5000000), "nodata": 0,
               "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as dst:
        for _ in range(6):
            top, left = (int(v) for v in rng.integers(0, side - 1500, 2))
            dst.write(rng.integers(30, 250, (3, 1200, 1300), dtype=np.uint8), window=Window(left, top, 1300, 1200))
    return 6 * 1200 * 1300


def scan(path: Path, tile_px: int, size: int, use_mask: bool, limit: int | None) -> tuple[int, int, float]:
    """The build's tiling loop: (cells visited, tiles kept, seconds)."""
    from engine.atlas.imagery import ImagerySource, OccupiedCells, gdal_env

    with gdal_env(), ImagerySource(path) as src:
        grid = src.grid(tile_px=tile_px)
        occupied = OccupiedCells(src, grid) if use_mask else None
        count = grid.count if limit is None else min(limit, grid.count)
        kept = 0
        start = time.perf_counter()
        for k in range(count):
            col, row = grid.position(k)
            if occupied is not None and not occupied(col, row):
                continue
            _, valid = src.read_tile(grid, col, row, size)
            kept += valid >= 0.5
        return count, kept, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=20_000, help="raster side in pixels (default 20000)")
    parser.add_argument("--tile-px", type=int, default=32)
    parser.add_argument("--size", type=int, default=128, help="pixels a tile is read at (the build's thumbnail)")
    parser.add_argument("--sample", type=int, default=20_000, help="cells timed for the cell-by-cell way")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sparse.tif"
        t0 = time.perf_counter()
        content = write_sparse_raster(path, args.side)
        print(f"raster: {args.side:,} x {args.side:,} px, {content / args.side ** 2:.3%} content, "
              f"{path.stat().st_size / 2**20:.1f} MB, written in {time.perf_counter() - t0:.1f} s")
        cells, _, seconds = scan(path, args.tile_px, args.size, use_mask=False, limit=args.sample)
        from engine.atlas.imagery import ImagerySource

        with ImagerySource(path) as src:
            total = src.grid(tile_px=args.tile_px).count
        per_cell = seconds / cells
        print(f"cell by cell: {per_cell * 1e3:.3f} ms per cell over the first {cells:,} cells -> "
              f"{per_cell * total:.1f} s for all {total:,} cells (extrapolated)")
        cells, kept, seconds = scan(path, args.tile_px, args.size, use_mask=True, limit=None)
        print(f"mask strips:  {seconds:.1f} s for all {cells:,} cells ({kept:,} tiles kept), "
              f"{seconds / cells * 1e6:.1f} us per cell")


if __name__ == "__main__":
    main()
