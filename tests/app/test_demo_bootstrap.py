"""First launch: no last atlas, so the demo world is generated (progress dialog), its atlas built with
the demo bundle in the background, and opened; the second launch opens it again directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.atlas import open_atlas

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # generates the demo world


def test_first_launch_generates_the_demo_and_opens_its_atlas(make_app, bundle_path: Path, tmp_path: Path) -> None:
    h = make_app(demo_size="tiny", demo_bundle=bundle_path)
    dialogs: list[str] = []
    h.state.tasks.changed.connect(lambda: dialogs.extend(t.name for t in h.state.tasks.tasks.values() if t.dialog))
    h.controller.project.launch()
    h.qtbot.waitUntil(lambda: h.state.project.atlas is not None, timeout=240_000)
    h.wait_idle()
    world = tmp_path / "data" / "demo-world"
    atlas_path = tmp_path / "data" / "demo-atlas"
    assert (world / "pairs.csv").is_file() and (world / "mosaic.tif").is_file()
    assert "Generating the demo world" in dialogs  # shown in the progress dialog
    assert h.window._progress_dialog is None  # and closed at the end
    assert Path(h.state.project.atlas_path).resolve() == atlas_path.resolve()
    atlas = open_atlas(atlas_path)
    # Every recording of the world's table is in the atlas, at its coordinates.
    import csv

    with open(world / "pairs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(atlas.recordings.ids) == len(rows)
    by_id = {r["id"]: (float(r["longitude"]), float(r["latitude"])) for r in rows}
    for rid, lon, lat in zip(atlas.recordings.ids, atlas.recordings.lon, atlas.recordings.lat, strict=True):
        assert by_id[rid] == pytest.approx((lon, lat), abs=1e-9)
    # The mosaic's tiles cover the recordings' places.
    assert np.min(atlas.tiles.lon) <= min(v[0] for v in by_id.values())
    assert h.window.map.tile_layout.count == len(atlas.tiles.ids) > 0
    # A second launch opens the remembered atlas without generating anything.
    h.window.close()
    again = make_app(demo_size="tiny", demo_bundle=bundle_path)
    again.controller.project.launch()
    again.wait_idle()
    assert Path(again.state.project.atlas_path).resolve() == atlas_path.resolve()
