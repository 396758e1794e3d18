"""A mostly empty raster is not read cell by cell: cells without a valid pixel are found from the mask a
strip at a time, and the atlas is exactly the one the cell-by-cell path builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import Affine

from engine.atlas import build_atlas, open_atlas
from engine.atlas.imagery import ImagerySource, OccupiedCells
from tests.engine.atlas.handmade import make_bundle, write_geotiff

TILE = 32


def _sparse_raster(path: Path, alpha: bool = False) -> tuple[Path, np.ndarray]:
    """1,000 x 800 px, nodata 0, 64 px blocks; four patches placed off the tile grid, so that cells along
    their edges are partly valid (some above, some below the 50 % a tile needs)."""
    rgb = np.zeros((800, 1000, 3), np.uint8)
    rng = np.random.default_rng(3)
    for top, left, h, w in ((40, 50, 100, 90), (300, 610, 150, 45), (700, 900, 90, 90), (520, 10, 17, 300)):
        rgb[top:top + h, left:left + w] = rng.integers(1, 255, (h, w, 3), dtype=np.uint8)
    write_geotiff(path, rgb, "EPSG:32633", Affine(2.0, 0, 600000, 0, -2.0, 5200000), nodata=0, tiled=True)
    return path, rgb


def _cells_with_data(rgb: np.ndarray) -> set[tuple[int, int]]:
    rows, cols = rgb.shape[0] // TILE, rgb.shape[1] // TILE
    any_band = rgb[:rows * TILE, :cols * TILE].any(axis=2)
    has = any_band.reshape(rows, TILE, cols, TILE).any(axis=(1, 3))
    return {(int(c), int(r)) for r, c in zip(*np.nonzero(has), strict=True)}


def test_occupied_cells_match_the_pixels(tmp_path: Path) -> None:
    path, rgb = _sparse_raster(tmp_path / "sparse.tif")
    with ImagerySource(path) as src:
        grid = src.grid(tile_px=TILE)
        occupied = OccupiedCells(src, grid)
        found = {(c, r) for r in range(grid.rows) for c in range(grid.cols) if occupied(c, r)}
    assert found == _cells_with_data(rgb) and 0 < len(found) < grid.count // 5


def test_sparse_build_equals_the_cell_by_cell_build_and_reads_only_occupied_cells(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, rgb = _sparse_raster(tmp_path / "sparse.tif")
    bundle = make_bundle(tmp_path / "b", dim=8, image_size=16)
    reads: list[tuple[int, int]] = []
    real_read = ImagerySource.read_tile

    def counting_read(self, grid, col, row, size):
        reads.append((col, row))
        return real_read(self, grid, col, row, size)

    monkeypatch.setattr(ImagerySource, "read_tile", counting_read)
    build_atlas(tmp_path / "fast", bundle.path, imagery=[path], tile_px=TILE, thumbnail_px=16, part_tiles=50)
    assert set(reads) == _cells_with_data(rgb)  # no empty cell was read
    reads.clear()
    with monkeypatch.context() as m:  # the cell-by-cell path: every cell read and tested
        m.setattr(OccupiedCells, "__call__", lambda self, col, row: True)
        build_atlas(tmp_path / "slow", bundle.path, imagery=[path], tile_px=TILE, thumbnail_px=16, part_tiles=50)
    assert len(reads) == (800 // TILE) * (1000 // TILE)
    fast, slow = open_atlas(tmp_path / "fast"), open_atlas(tmp_path / "slow")
    assert 0 < len(fast.tiles) == len(slow.tiles) < len(_cells_with_data(rgb))  # partly valid cells dropped
    for name in ("grid", "lon", "lat", "footprints", "embeddings", "thumb"):
        np.testing.assert_array_equal(getattr(fast.tiles, name), getattr(slow.tiles, name), err_msg=name)
    assert (tmp_path / "fast" / "thumbnails.bin").read_bytes() == (tmp_path / "slow" / "thumbnails.bin").read_bytes()


def test_an_interrupted_sparse_build_resumes_to_the_same_atlas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts start mid-strip on resume; the strip is read again and the result is unchanged."""
    from engine.errors import Cancelled
    from engine.progress import Job

    path, _ = _sparse_raster(tmp_path / "sparse.tif")
    bundle = make_bundle(tmp_path / "b", dim=8, image_size=16)
    build_atlas(tmp_path / "whole", bundle.path, imagery=[path], tile_px=TILE, thumbnail_px=16, part_tiles=37)

    class StopAfter(Job):
        """Cancels at the n-th cell (a build checks its job once per cell)."""

        def __init__(self, cells: int) -> None:
            super().__init__()
            self.left = cells

        def check(self) -> None:
            self.left -= 1
            if self.left == 0:
                self.cancel()
            super().check()

    with pytest.raises(Cancelled):
        build_atlas(tmp_path / "resumed", bundle.path, imagery=[path], tile_px=TILE, thumbnail_px=16,
                    part_tiles=37, job=StopAfter(400))  # in part 10, mid-strip
    assert open_atlas(tmp_path / "resumed").manifest["sources"][0]["parts_done"] == 10
    build_atlas(tmp_path / "resumed", bundle.path, imagery=[path], tile_px=TILE, thumbnail_px=16, part_tiles=37)
    whole, resumed = open_atlas(tmp_path / "whole"), open_atlas(tmp_path / "resumed")
    for name in ("grid", "embeddings"):
        np.testing.assert_array_equal(getattr(whole.tiles, name), getattr(resumed.tiles, name))
