"""The acoustic indices shipped for the demo world (resources/demo-indices.*) and their numpy-only import
into the demo atlas: matched by recording id, refused for another world, never twice."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.services import demo
from engine.atlas.format import open_atlas
from engine.ecology.names import INDEX_NAMES
from engine.ecology.shipped import SHIPPED_CSV, SHIPPED_JSON, read_shipped_indices, write_shipped_indices
from tests.app.layer_fixtures import folder_digest
from tests.conftest import ROOT

RESOURCES = ROOT / "resources"


def test_shipped_table_is_small_and_covers_the_default_seed_0_world() -> None:
    manifest, ids, values, hours = read_shipped_indices(RESOURCES)
    assert (manifest["seed"], manifest["size"], manifest["recordings"]) == (0, "default", 2000)
    assert ids == [str(i) for i in range(2000)]  # the demo world's recording ids
    assert manifest["names"] == [n for n in INDEX_NAMES if n in manifest["names"]] and "NDSI" in manifest["names"]
    assert manifest["library"].startswith("scikit-maad") and manifest["parameters"]
    assert (RESOURCES / SHIPPED_CSV).stat().st_size < 600_000
    assert np.isnan(hours).all()  # the demo world's clips carry no time of day
    shares = values[:, [manifest["names"].index(n) for n in ("biophony_share", "anthropophony_share",
                                                               "geophony_share")]]
    ok = np.isfinite(shares).all(axis=1)
    assert ok.mean() > 0.95
    np.testing.assert_allclose(shares[ok].sum(axis=1), 1.0, atol=1e-6)  # the composition's definition
    ndsi = values[:, manifest["names"].index("NDSI")]
    assert np.nanmin(ndsi) >= -1 and np.nanmax(ndsi) <= 1


@pytest.fixture
def demo_like(tmp_path: Path, built_atlas: Path) -> tuple[demo.DemoPaths, Path, dict[str, list[float]]]:
    """A "world" (world.json + the test atlas's pair table), its atlas, and shipped indices made for it by
    the real writer from an indices table in the engine's format (rows shuffled, one id missing, one extra)."""
    paths = demo.DemoPaths(tmp_path / "data")
    paths.world.mkdir(parents=True)
    (paths.world / "world.json").write_text(json.dumps({"seed": 0, "size": "tiny"}))
    shutil.copy(built_atlas.parent / f"{built_atlas.name}-pairs.csv", paths.world / "pairs.csv")
    shutil.copytree(built_atlas, paths.atlas)
    ids = [str(i) for i in open_atlas(paths.atlas).recordings.ids]
    rng = np.random.default_rng(3)
    table = {rid: [float(rng.uniform(100, 500)), float(rng.uniform(-1, 1)), float(i % 24)] for i, rid in enumerate(ids)}
    made = tmp_path / "made"
    made.mkdir()
    rows = [[rid, "title", "path", h, aci, ndsi] for rid, (aci, ndsi, h) in table.items()][1:]  # ids[0] missing
    rows.append(["not-in-the-atlas", "x", "x", 1.0, 1.0, 0.0])
    rng.shuffle(rows)
    with open(made / "indices.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "path", "hour", "ACI", "NDSI"])
        w.writerows(rows)
    (made / "indices.json").write_text(json.dumps({"library": "scikit-maad test", "parameters": {"a": 1},
                                                   "window_s": 60.0, "summary": "mean"}))
    shipped = tmp_path / "shipped"
    write_shipped_indices(paths.world, made / "indices.csv", shipped)
    return paths, shipped, table


def test_import_matches_by_recording_id_and_happens_once(demo_like) -> None:
    paths, shipped, table = demo_like
    note = demo.add_shipped_indices(paths, shipped)
    assert "added from the shipped table" in note
    atlas = open_atlas(paths.atlas)
    ind = atlas.indices
    assert ind.names == ["ACI", "NDSI"] and ind.library == "scikit-maad test"
    for i, rid in enumerate(atlas.recordings.ids):
        if i == 0:
            assert np.isnan(ind.values[0]).all()  # not in the shipped table: no value, never 0
            continue
        aci, ndsi, hour = table[str(rid)]
        assert ind.column("ACI")[i] == pytest.approx(aci) and ind.column("NDSI")[i] == pytest.approx(ndsi)
        assert ind.hour[i] == pytest.approx(hour)
    from engine.atlas.indices import read_neighbours
    from engine.ecology.maps import DEFAULT_K

    assert read_neighbours(atlas, DEFAULT_K) is not None  # the app draws the first layer without searching
    before = folder_digest(paths.atlas)
    assert "has its acoustic indices" in demo.add_shipped_indices(paths, shipped)
    assert folder_digest(paths.atlas) == before


def test_another_world_gets_no_indices_rather_than_wrong_ones(demo_like) -> None:
    paths, shipped, _ = demo_like
    pairs = paths.world / "pairs.csv"
    pairs.write_text(pairs.read_text().replace("rec00", "recXX"))
    before = folder_digest(paths.atlas)
    assert "differs" in demo.add_shipped_indices(paths, shipped)
    (paths.world / "world.json").write_text(json.dumps({"seed": 1, "size": "tiny"}))
    assert "seed 1" in demo.add_shipped_indices(paths, shipped)
    assert open_atlas(paths.atlas).indices is None and folder_digest(paths.atlas) == before
    (shipped / SHIPPED_JSON).unlink()
    assert "no shipped indices" in demo.add_shipped_indices(paths, shipped)


def test_an_older_demo_atlas_gets_the_shipped_indices_when_the_app_opens_it(make_app, demo_like, bundle_path: Path,
                                                                           built_atlas: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    paths, shipped, _ = demo_like
    monkeypatch.setattr(demo, "shipped_indices_folder", lambda: shipped)
    h = make_app()
    assert h.controller.context.data_dir == paths.root
    before = folder_digest(built_atlas)
    h.open(built_atlas, bundle_path)  # not the demo atlas: left alone, no index layers
    assert "ACI" not in h.window.layers_control.keys() and folder_digest(built_atlas) == before
    h.open(paths.atlas, bundle_path)
    assert h.window.layers_control.keys()[-2:] == ["ACI", "NDSI"]
    assert not h.window.layers_control.note.isVisible()
