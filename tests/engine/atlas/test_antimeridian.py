"""Imagery across the antimeridian (180 degrees): tile centres are stored in [-180, 180), footprints stay
small, and --lonlat / app clicks reach every tile from either side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import Affine

from engine.atlas import build_atlas, locate_tile, open_atlas
from engine.cli import main
from tests.engine.atlas.handmade import make_bundle, write_geotiff

PX = 0.01  # degrees per pixel
TILE = 10  # px: 0.1 degree tiles


@pytest.fixture(scope="module")
def fiji_atlas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EPSG:4326 image from 179.5 to 180.5 E (100 x 100 px), cut into 10 x 10 tiles of 0.1 degree."""
    root = tmp_path_factory.mktemp("antimeridian")
    rgb = np.random.default_rng(0).integers(20, 230, (100, 100, 3)).astype(np.uint8)
    tif = write_geotiff(root / "fiji.tif", rgb, "EPSG:4326", Affine(PX, 0, 179.5, 0, -PX, -16.0))
    bundle = make_bundle(root / "b", dim=8, image_size=16)
    build_atlas(root / "atlas", bundle.path, imagery=[tif], tile_px=TILE, thumbnail_px=16)
    return root / "atlas"


def test_tile_centres_are_wrapped_and_footprints_stay_small(fiji_atlas: Path) -> None:
    atlas = open_atlas(fiji_atlas)
    assert len(atlas.tiles) == 100
    cols, rows = np.asarray(atlas.tiles.grid).T
    raw_centre = 179.5 + (cols + 0.5) * TILE * PX  # 179.55 ... 180.45 as the raster says
    expected = np.where(raw_centre >= 180, raw_centre - 360, raw_centre)
    np.testing.assert_allclose(atlas.tiles.lon, expected, atol=1e-9)
    assert (np.asarray(atlas.tiles.lon) >= -180).all() and (np.asarray(atlas.tiles.lon) < 180).all()
    np.testing.assert_allclose(atlas.tiles.lat, -16.0 - (rows + 0.5) * TILE * PX, atol=1e-9)
    fp_lon = np.asarray(atlas.tiles.footprints)[:, :, 0]
    width = fp_lon.max(axis=1) - fp_lon.min(axis=1)
    np.testing.assert_allclose(width, TILE * PX, atol=1e-9)  # never a 359.9 degree "tile"


@pytest.mark.parametrize("lon, lat, col, row", [
    (179.96, -16.05, 4, 0),   # just west of the antimeridian
    (-179.96, -16.05, 5, 0),  # just east of it, written the usual way
    (-179.55, -16.95, 9, 9),
    (179.55, -16.95, 0, 9),
])
def test_lonlat_reaches_tiles_on_both_sides(fiji_atlas: Path, lon: float, lat: float, col: int, row: int) -> None:
    atlas = open_atlas(fiji_atlas)
    i = locate_tile(atlas, lon, lat)
    assert i is not None and tuple(atlas.tiles.grid[i]) == (col, row)


def test_every_tile_is_found_at_its_own_centre(fiji_atlas: Path) -> None:
    atlas = open_atlas(fiji_atlas)
    found = [locate_tile(atlas, float(x), float(y)) for x, y in zip(atlas.tiles.lon, atlas.tiles.lat, strict=True)]
    assert found == list(range(len(atlas.tiles)))
    assert locate_tile(atlas, 0.0, -16.5) is None  # the other side of the world is not in the image


def test_command_line_lonlat_across_the_antimeridian(fiji_atlas: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["atlas", "query", "--atlas", str(fiji_atlas), "--lonlat=-179.96,-16.05", "--json"]) == 0
    tile = json.loads(capsys.readouterr().out)["tile"]
    assert tile is not None and tile["lon"] == pytest.approx(-179.95)


def test_app_click_east_of_180_reaches_the_tile(fiji_atlas: Path) -> None:
    """The app maps a click to lon/lat through Web Mercator; east of the map's edge that is lon > 180."""
    from types import SimpleNamespace

    from app.services.geo import lonlat_to_mercator, mercator_to_lonlat
    from app.services.search import tile_at

    atlas = open_atlas(fiji_atlas)
    x, y = lonlat_to_mercator(180.04, -16.05)
    lon, lat = mercator_to_lonlat(x, y)
    assert lon > 180
    i = tile_at(SimpleNamespace(atlas=atlas), float(lon), float(lat))
    assert i is not None and tuple(atlas.tiles.grid[i]) == (5, 0)


def test_a_projected_raster_across_the_antimeridian(tmp_path: Path) -> None:
    """EPSG:3832 (PDC Mercator, centred on 150 E): PROJ gives wrapped longitudes for its corners."""
    x_antimeridian = 3339584.723798207  # 30 degrees east of 150 E on its sphere-free Mercator (WGS84 a)
    rgb = np.full((64, 128, 3), 120, np.uint8)
    tif = write_geotiff(tmp_path / "pdc.tif", rgb, "EPSG:3832",
                        Affine(100.0, 0, x_antimeridian - 6400.0, 0, -100.0, -1800000.0))
    bundle = make_bundle(tmp_path / "b", dim=8, image_size=16)
    build_atlas(tmp_path / "atlas", bundle.path, imagery=[tif], tile_px=16, thumbnail_px=16)
    atlas = open_atlas(tmp_path / "atlas")
    lon = np.asarray(atlas.tiles.lon)
    assert len(lon) == 32 and (lon >= -180).all() and (lon < 180).all()
    assert (lon > 179).any() and (lon < -179).any()  # tiles on both sides
    fp_lon = np.asarray(atlas.tiles.footprints)[:, :, 0]
    assert (fp_lon.max(axis=1) - fp_lon.min(axis=1) < 0.1).all()
    found = [locate_tile(atlas, float(x), float(y)) for x, y in zip(lon, atlas.tiles.lat, strict=True)]
    assert found == list(range(len(lon)))
    west, _, east, _ = atlas.sources[0].overview_bounds  # EPSG:3857: one small box, not the whole world
    assert east - west < 50_000


def test_the_map_draws_the_image_in_one_piece_where_its_overview_is(fiji_atlas: Path) -> None:
    """Overview, tiles and heat-map cells of an image across 180 all lie just east of the map's edge, and a
    click on a drawn tile selects it."""
    from types import SimpleNamespace

    from app.services.geo import lonlat_to_mercator, mercator_to_lonlat
    from app.services.map_layout import layout_tiles
    from app.services.search import tile_at

    atlas = open_atlas(fiji_atlas)
    west, south, east, north = atlas.sources[0].overview_bounds
    (x0, x1), _ = lonlat_to_mercator([179.5, 180.5], [0.0, 0.0])
    assert west == pytest.approx(x0, abs=2e3) and east == pytest.approx(x1, abs=2e3)  # one small box
    layout = layout_tiles(atlas.tiles)
    assert (layout.x > west).all() and (layout.x < east).all()
    assert (layout.x1 - layout.x0 < 0.2 * (east - west)).all()  # each tile drawn small, none across the world
    grid = layout.grids[0]
    for k in (0, 37, 99):
        cx, cy = grid.cell_centre(grid.rows[k], grid.cols[k])
        tile = grid.tiles[k]
        assert cx == pytest.approx(layout.x[tile], abs=50) and cy == pytest.approx(layout.y[tile], abs=50)
    project = SimpleNamespace(atlas=atlas)
    for i in (4, 5, 50, 99):  # click the middle of where each tile is drawn
        lon, lat = mercator_to_lonlat(layout.x[i], layout.y[i])
        assert tile_at(project, float(lon), float(lat)) == i


def test_a_world_image_keeps_its_place_on_the_map(tmp_path: Path) -> None:
    """The other side of the rule: an image spanning the whole world is not moved or folded."""
    rgb = np.random.default_rng(1).integers(20, 230, (90, 180, 3)).astype(np.uint8)
    tif = write_geotiff(tmp_path / "world.tif", rgb, "EPSG:4326", Affine(2.0, 0, -180.0, 0, -2.0, 90.0))
    bundle = make_bundle(tmp_path / "b", dim=8, image_size=16)
    build_atlas(tmp_path / "atlas", bundle.path, imagery=[tif], tile_px=45, thumbnail_px=16)
    atlas = open_atlas(tmp_path / "atlas")
    from app.services.geo import lonlat_to_mercator
    from app.services.map_layout import layout_tiles

    np.testing.assert_allclose(sorted(set(np.round(atlas.tiles.lon, 6))), [-135.0, -45.0, 45.0, 135.0])
    layout = layout_tiles(atlas.tiles)
    np.testing.assert_allclose(layout.x, lonlat_to_mercator(atlas.tiles.lon, atlas.tiles.lat)[0])
    west, _, east, _ = atlas.sources[0].overview_bounds
    (x0, x1), _ = lonlat_to_mercator([-180.0, 180.0], [0.0, 0.0])
    assert west == pytest.approx(x0, rel=1e-3) and east == pytest.approx(x1, rel=1e-3)
