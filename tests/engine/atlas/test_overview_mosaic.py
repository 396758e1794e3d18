"""The atlas-wide overview mosaic (engine.atlas.overview_mosaic): each source's picture lands where its
bounds say, new sources are composited onto it or widen it, it is rewritten only when the sources change,
and a damaged overview is left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from engine.atlas.overview_mosaic import MOSAIC_FILE, read_mosaic, update_overview_mosaic


def _atlas(root: Path, sources: list[tuple[tuple[int, int, int], tuple[float, float, float, float]]]) -> Path:
    """A manifest with sources whose overviews are solid colours over the given EPSG:3857 bounds."""
    (root / "overviews").mkdir(parents=True, exist_ok=True)
    entries = []
    for k, (colour, bounds) in enumerate(sources):
        name = f"overviews/source-{k}.png"
        Image.new("RGBA", (200, 100), (*colour, 255)).save(root / name)
        entries.append({"index": k, "path": f"/s{k}.tif", "overview": {"file": name, "bounds_3857": list(bounds)}})
    (root / "atlas.json").write_text(json.dumps({"sources": entries}))
    return root


def _colour_at(mosaic: tuple[np.ndarray, tuple[float, ...]], x: float, y: float) -> tuple[int, ...]:
    rgba, (west, south, east, north) = mosaic
    h, w = rgba.shape[:2]
    col, row = int((x - west) / (east - west) * w), int((north - y) / (north - south) * h)
    return tuple(int(v) for v in rgba[row, col])


def test_sources_land_where_their_bounds_say_and_updates_are_incremental(tmp_path: Path) -> None:
    red, blue, green, grey = (220, 30, 30), (30, 30, 220), (30, 200, 60), (128, 128, 128)
    root = _atlas(tmp_path / "a", [(red, (0.0, 0.0, 2000.0, 1000.0)), (blue, (6000.0, 3000.0, 8000.0, 4000.0))])
    assert update_overview_mosaic(root)
    mosaic = read_mosaic(root)
    assert mosaic is not None
    rgba, bounds = mosaic
    assert max(rgba.shape[:2]) == 4096 and bounds[0] == 0.0 and bounds[3] == 4000.0
    assert abs(bounds[2] - 8000.0) < 2 and abs(bounds[1]) < 2  # the extent of both, to a pixel
    assert _colour_at(mosaic, 1000, 500) == (*red, 255) and _colour_at(mosaic, 7000, 3500) == (*blue, 255)
    assert _colour_at(mosaic, 4000, 2000)[3] == 0  # between the sources: nothing
    written = (root / MOSAIC_FILE).stat().st_mtime_ns
    assert not update_overview_mosaic(root) and (root / MOSAIC_FILE).stat().st_mtime_ns == written

    _atlas(root, [(red, (0.0, 0.0, 2000.0, 1000.0)), (blue, (6000.0, 3000.0, 8000.0, 4000.0)),
                  (green, (3000.0, 1500.0, 5000.0, 2500.0))])  # inside the extent: composited on
    assert update_overview_mosaic(root)
    mosaic = read_mosaic(root)
    assert mosaic is not None and mosaic[1] == bounds
    assert _colour_at(mosaic, 4000, 2000) == (*green, 255) and _colour_at(mosaic, 1000, 500) == (*red, 255)

    _atlas(root, [(red, (0.0, 0.0, 2000.0, 1000.0)), (blue, (6000.0, 3000.0, 8000.0, 4000.0)),
                  (green, (3000.0, 1500.0, 5000.0, 2500.0)), (grey, (-9000.0, -1000.0, -7000.0, 0.0))])
    assert update_overview_mosaic(root)  # outside: a wider extent, everything again
    mosaic = read_mosaic(root)
    assert mosaic is not None and mosaic[1][0] == -9000.0
    for colour, (x, y) in ((red, (1000, 500)), (blue, (7000, 3500)), (green, (4000, 2000)), (grey, (-8000, -500))):
        assert _colour_at(mosaic, x, y) == (*colour, 255)


def test_one_source_needs_no_mosaic_and_a_damaged_overview_is_left_out(tmp_path: Path) -> None:
    root = _atlas(tmp_path / "one", [((200, 0, 0), (0.0, 0.0, 10.0, 10.0))])
    assert not update_overview_mosaic(root) and read_mosaic(root) is None
    root = _atlas(tmp_path / "two", [((200, 0, 0), (0.0, 0.0, 10.0, 10.0)), ((0, 0, 200), (20.0, 0.0, 30.0, 10.0))])
    (root / "overviews" / "source-1.png").write_bytes(b"\x89PNG broken")
    assert update_overview_mosaic(root)
    mosaic = read_mosaic(root)
    assert mosaic is not None
    assert _colour_at(mosaic, 5, 5) == (200, 0, 0, 255) and _colour_at(mosaic, 25, 5)[3] == 0
