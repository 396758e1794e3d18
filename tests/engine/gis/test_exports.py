"""Exports round-trip: COG and GeoPackage give each tile's value at its place (checked with pyproj), NaN as
nodata / null; Raven selection tables; one-line errors and nothing half-written."""

from __future__ import annotations

import csv
import errno
import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from engine.atlas import open_atlas
from engine.cli import main
from engine.gis.output import ExportError
from engine.gis.raster import layer_raster, write_cog
from engine.gis.vector import write_tiles_gpkg


def tile_values(n: int) -> np.ndarray:
    values = np.arange(n, dtype=np.float32) * 1.5 + 2.0
    values[::5] = np.nan  # tiles without a value
    return values


def test_cog_round_trip_in_the_imagery_crs_and_in_wgs84(real_atlas: Path, realdata: Path, tmp_path: Path) -> None:
    from rio_cogeo.cogeo import cog_validate

    atlas = open_atlas(real_atlas)
    values = tile_values(len(atlas.tiles))
    utm, wgs = tmp_path / "utm.tif", tmp_path / "wgs.tif"
    write_cog(utm, layer_raster(atlas, values), name="test")
    write_cog(wgs, layer_raster(atlas, values, crs="EPSG:4326"), name="test")
    with rasterio.open(realdata / "imagery" / "RGB.byte.tif") as src:
        source_transform = src.transform
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32618", always_xy=True)
    for path, crs in ((utm, "EPSG:32618"), (wgs, "EPSG:4326")):
        assert cog_validate(str(path))[0], path
        with rasterio.open(path) as ds:
            assert ds.crs.to_string() == crs and np.isnan(ds.nodata) and ds.dtypes[0] == "float32"
            band = ds.read(1)
            if crs == "EPSG:32618":  # one pixel per 64 px tile of the source image, on its grid
                assert ds.transform.a == pytest.approx(source_transform.a * 64, rel=1e-9)
                assert ds.transform.c == pytest.approx(source_transform.c, abs=1e-3)
                assert ds.transform.f == pytest.approx(source_transform.f, abs=1e-3)
            for i in range(len(atlas.tiles)):
                # the tile's centre from its lon/lat corners (the atlas's), moved with pyproj, not the export
                lon, lat = atlas.tiles.footprints[i].mean(axis=0)
                x, y = to_utm.transform(lon, lat) if crs == "EPSG:32618" else (lon, lat)
                row, col = ds.index(x, y)
                got = band[row, col]
                assert (np.isnan(got) and np.isnan(values[i])) or got == values[i], (path.name, i)


def _rings(wkb: bytes) -> np.ndarray:
    order, kind, rings, points = struct.unpack_from("<BIII", wkb)
    assert (order, kind, rings) == (1, 3, 1)
    return np.frombuffer(wkb, "<f8", count=points * 2, offset=13).reshape(points, 2)


def test_geopackage_round_trip_with_nulls(real_atlas: Path, tmp_path: Path) -> None:
    from pyogrio import read_info
    from pyogrio.raw import read

    atlas = open_atlas(real_atlas)
    values = tile_values(len(atlas.tiles))
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32618", always_xy=True)
    for crs in ("EPSG:4326", "EPSG:32618"):
        path = tmp_path / f"tiles-{crs[5:]}.gpkg"
        write_tiles_gpkg(path, atlas, {"value": values}, crs=crs)
        info = read_info(path)
        assert info["crs"] == crs and info["geometry_type"] == "Polygon" and info["features"] == len(atlas.tiles)
        _, _, geometry, fields = read(path)
        tile = np.asarray(fields[0])
        for k, wkb in enumerate(geometry):
            i = int(tile[k])
            ring = _rings(wkb)
            corners = np.asarray(atlas.tiles.footprints[i], np.float64)
            if crs != "EPSG:4326":
                corners = np.array([to_utm.transform(lon, lat) for lon, lat in corners])
            np.testing.assert_allclose(ring[:4], corners, rtol=0, atol=1e-6 if crs == "EPSG:4326" else 0.01)
            assert np.array_equal(ring[0], ring[-1])
        with sqlite3.connect(path) as db:  # NaN was written as SQL NULL, not as a number
            stored = dict(db.execute("SELECT tile, value FROM tiles").fetchall())
        for i, v in enumerate(values):
            assert stored[i] is None if np.isnan(v) else stored[i] == pytest.approx(v)


def test_raven_selection_table_and_csv_of_a_tile(real_atlas: Path, tmp_path: Path) -> None:
    out = tmp_path / "tile.selections.txt"
    assert main(["atlas", "export", "--atlas", str(real_atlas), "--tile", "3", "--format", "raven",
                 "--top-k", "5", "--out", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0])[:7] == ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                                 "High Freq (Hz)"]
    assert [r["Selection"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert float(rows[0]["End Time (s)"]) == pytest.approx(10.0, abs=0.01)  # the 10 s Song Meter files
    assert float(rows[1]["Begin Time (s)"]) == pytest.approx(float(rows[0]["End Time (s)"]))
    assert rows[0]["High Freq (Hz)"] == "11000" and Path(rows[0]["Begin Path"]).is_file()
    table = tmp_path / "indices.csv"
    assert main(["atlas", "export", "--atlas", str(real_atlas), "--layer", "indices", "--format", "csv",
                 "--out", str(table)]) == 0
    with open(table, newline="") as f:
        assert len(list(csv.DictReader(f))) == 12


def test_cli_layers_pngs_and_one_line_errors(real_atlas: Path, real_audio: list[Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for fmt, name in (("cog", "aci.tif"), ("gpkg", "aci.gpkg"), ("csv", "aci.csv"), ("png", "aci.png")):
        assert main(["atlas", "export", "--atlas", str(real_atlas), "--layer", "ACI", "--format", fmt,
                     "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "aci.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["atlas", "export", "--atlas", str(real_atlas), "--spectrogram", str(real_audio[0]),
                 "--format", "png", "--out", str(tmp_path / "spec.png")]) == 0
    capsys.readouterr()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["atlas", "export", "--atlas", str(real_atlas), "--layer", "ACI", "--format", "cog",
                 "--out", str(blocker / "x.tif")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "cannot be written" in err
    assert main(["atlas", "export", "--atlas", str(real_atlas), "--layer", "nope", "--format", "cog",
                 "--out", str(tmp_path / "n.tif")]) == 2
    assert "not a layer" in capsys.readouterr().err
    # a disk that fills up while the COG is written: one-line error, the old file intact, no temporary left
    old = (tmp_path / "aci.tif").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("rio_cogeo.cogeo.cog_translate", full_disk)
    with pytest.raises(ExportError, match="No space left"):
        write_cog(tmp_path / "aci.tif", layer_raster(open_atlas(real_atlas), np.zeros(len(open_atlas(real_atlas).tiles))))
    assert (tmp_path / "aci.tif").read_bytes() == old
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
