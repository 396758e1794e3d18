"""The atlas's tile index (engine.atlas.tile_index): point lookups through it equal a full scan written
here independently (rotated, overlapping, antimeridian and near-polar tiles, several sources); a build
stores it; a stale, damaged or foreign index is never used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.atlas import locate_tile, open_atlas
from engine.atlas.synthetic import write_synthetic_atlas
from engine.atlas.tile_index import (
    INDEX_FILE,
    INDEX_FOLDER,
    read_tile_index,
    tile_index_of,
    update_tile_index,
)
from engine.atlas.writer import AtlasWriter
from engine.bundle.format import load_bundle
from engine.geo import haversine_km
from tests.engine.atlas.handmade import HandmadeBundle


def _quads(rng: np.random.Generator, centres: np.ndarray, size: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotated squares (top-left, top-right, bottom-right, bottom-left) around lon/lat centres; longitudes
    may pass +-180 (a tile astride the antimeridian keeps its corners next to its centre)."""
    corners = np.array([[-1, 1], [1, 1], [1, -1], [-1, -1]], float) / 2
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = corners[None, :, 0] * c - corners[None, :, 1] * s
    y = corners[None, :, 0] * s + corners[None, :, 1] * c
    return np.stack([centres[:, 0:1] + x * size[:, None], centres[:, 1:2] + y * size[:, None]], axis=2)


def _write(root: Path, bundle: HandmadeBundle, groups: list[np.ndarray]) -> None:
    """One source per group of (k, 4, 2) footprints."""
    b = load_bundle(bundle.path)
    rng = np.random.default_rng(0)
    with AtlasWriter(root, b, {"thumbnail_px": 8}) as w:
        for s, fps in enumerate(groups):
            lon = np.mod(fps[:, :, 0].mean(1) + 180, 360) - 180
            lat = fps[:, :, 1].mean(1)
            grid = np.stack([np.arange(len(fps)), np.zeros(len(fps), int)], 1)
            w.append_tiles(lon, lat, fps, s, grid, [b"jpeg"] * len(fps), rng.normal(size=(len(fps), 8)))
            w.manifest["sources"].append({"index": s, "path": f"/s{s}.tif", "status": "complete", "tiles": len(fps),
                                          "tile_px": [1, 1], "overview": None})
        w.commit()


def _full_scan(atlas, lon: float, lat: float) -> int | None:  # noqa: ANN001
    """Every tile tested in degrees around its own centre; the nearest centre among those that contain it."""
    fp = np.asarray(atlas.tiles.footprints, dtype=np.float64)
    centre = np.asarray(atlas.tiles.lon, dtype=np.float64)
    qx = (fp[:, :, 0] - centre[:, None] + 180) % 360 - 180  # (N, 4) corners around each tile's centre
    qy = fp[:, :, 1]
    px = (lon - centre + 180) % 360 - 180  # the point around each tile's centre
    ex, ey = np.roll(qx, -1, axis=1) - qx, np.roll(qy, -1, axis=1) - qy
    side = ex * (lat - qy) - ey * (px[:, None] - qx)  # which side of each edge the point is on
    hits = np.flatnonzero((side >= 0).all(axis=1) | (side <= 0).all(axis=1))
    if not hits.size:
        return None
    km = haversine_km(lon, lat, atlas.tiles.lon[hits], atlas.tiles.lat[hits])
    return int(hits[np.argmin(km)])


@pytest.fixture(scope="module")
def mixed_atlas(tmp_path_factory: pytest.TempPathFactory, bundle: HandmadeBundle) -> Path:
    rng = np.random.default_rng(7)
    groups = []
    for centre, spread, n in (((10.0, 50.0), 1.0, 300), ((179.9, -17.0), 0.6, 200), ((-60.0, 84.0), 2.0, 150)):
        c = np.column_stack([rng.uniform(-spread, spread, n) + centre[0], rng.uniform(-spread, spread, n) + centre[1]])
        groups.append(_quads(rng, c, rng.uniform(0.05, 0.4, n), rng.uniform(0, np.pi / 2, n)))  # overlapping
    root = tmp_path_factory.mktemp("tile-index") / "atlas"
    _write(root, bundle, groups)
    update_tile_index(root)
    return root


def test_point_lookups_through_the_index_equal_a_full_scan(mixed_atlas: Path) -> None:
    atlas = open_atlas(mixed_atlas)
    assert read_tile_index(atlas.path, atlas.tiles) is not None  # the stored one is what answers
    rng = np.random.default_rng(1)
    places = [(10.0, 50.0, 1.3), (179.9, -17.0, 0.9), (-60.0, 84.0, 2.5)]
    checked = found = 0
    for lon0, lat0, spread in places:
        for lon, lat in zip(rng.uniform(-spread, spread, 150) + lon0, rng.uniform(-spread, spread, 150) + lat0,
                            strict=True):
            lon = float((lon + 180) % 360 - 180)
            lat = float(np.clip(lat, -90, 90))
            expected = _full_scan(atlas, lon, lat)
            assert locate_tile(atlas, lon, lat) == expected, (lon, lat)
            checked += 1
            found += expected is not None
    for i in range(0, len(atlas.tiles), 17):  # every 17th tile's own centre, with the antimeridian ones
        lon, lat = float(atlas.tiles.lon[i]), float(atlas.tiles.lat[i])
        assert locate_tile(atlas, lon, lat) == _full_scan(atlas, lon, lat)
    assert checked == 450 and 150 < found < 450  # hits and misses both seen
    assert locate_tile(atlas, -180.0, -17.0) == _full_scan(atlas, -180.0, -17.0)
    assert locate_tile(atlas, 180.0, -17.0) == _full_scan(atlas, 180.0, -17.0)


def test_the_index_finds_each_tile_in_every_view_that_meets_it(mixed_atlas: Path) -> None:
    atlas = open_atlas(mixed_atlas)
    index = tile_index_of(atlas)
    quads = index.quads(np.arange(len(atlas.tiles)))
    x0, x1, y0, y1 = quads[..., 0].min(1), quads[..., 0].max(1), quads[..., 1].min(1), quads[..., 1].max(1)
    assert (x1 - x0 < 1e5).all()  # the antimeridian tiles are drawn small, in one piece
    west, south, east, north = index.bounds
    rng = np.random.default_rng(2)
    for _ in range(300):
        w, h = rng.uniform(0, 0.05) * (east - west), rng.uniform(0, 0.05) * (north - south)
        a, b = rng.uniform(west - w, east), rng.uniform(south - h, north)
        expected = np.flatnonzero((x1 >= a) & (x0 <= a + w) & (y1 >= b) & (y0 <= b + h))
        np.testing.assert_array_equal(index.visible(a, b, a + w, b + h), expected)


def test_a_build_stores_the_index_and_a_stale_or_damaged_one_is_not_used(tmp_path: Path, bundle: HandmadeBundle
                                                                          ) -> None:
    rng = np.random.default_rng(3)
    c = np.column_stack([rng.uniform(5, 6, 50), rng.uniform(45, 46, 50)])
    _write(tmp_path / "a", bundle, [_quads(rng, c, np.full(50, 0.1), np.zeros(50))])
    root = tmp_path / "a"
    assert update_tile_index(root) and not update_tile_index(root)  # written once, then current
    atlas = open_atlas(root)
    stored = read_tile_index(root, atlas.tiles)
    assert stored is not None and stored.count == 50

    # More tiles committed since (an interrupted build's next run adds them): the old index is not used.
    with AtlasWriter(root, load_bundle(bundle.path), {"thumbnail_px": 8}, create=False) as w:
        more = _quads(rng, np.column_stack([rng.uniform(5, 6, 5), rng.uniform(45, 46, 5)]), np.full(5, 0.1), np.zeros(5))
        w.append_tiles(more[:, :, 0].mean(1), more[:, :, 1].mean(1), more, 0, np.zeros((5, 2), int), [b"j"] * 5,
                       rng.normal(size=(5, 8)))
        w.commit()
    grown = open_atlas(root)
    assert read_tile_index(root, grown.tiles) is None
    assert tile_index_of(grown).count == 55  # computed in memory meanwhile
    assert update_tile_index(root) and read_tile_index(root, grown.tiles).count == 55

    folder = root / INDEX_FOLDER
    order = next(folder.glob("order.*"))
    order.write_bytes(order.read_bytes()[:-4])  # a truncated array
    assert read_tile_index(root, grown.tiles) is None
    (folder / INDEX_FILE).write_text("{not json")
    assert read_tile_index(root, grown.tiles) is None
    assert update_tile_index(root)
    meta = json.loads((folder / INDEX_FILE).read_text())
    meta["format_version"] = 99
    (folder / INDEX_FILE).write_text(json.dumps(meta))
    assert read_tile_index(root, grown.tiles) is None
    for lon, lat in ((5.5, 45.5), (5.05, 45.95), (7.0, 45.5)):  # still right without a usable index
        assert locate_tile(grown, lon, lat) == _full_scan(grown, lon, lat)

    other = open_atlas(write_synthetic_atlas(tmp_path / "other", 55, dim=8))  # as many tiles, other places
    assert update_tile_index(root) and read_tile_index(root, other.tiles) is None


def test_an_interrupted_index_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    root = write_synthetic_atlas(tmp_path / "s", 400, dim=8)
    folder = root / INDEX_FOLDER
    (folder / ".order.i4.abcd1234.tmp").write_bytes(b"partial")  # what a killed writer leaves
    (folder / INDEX_FILE).unlink()
    assert update_tile_index(root)
    assert sorted(p.name for p in folder.iterdir()) == ["index.json", "order.i4", "starts.i8"]
