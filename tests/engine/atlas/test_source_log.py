"""The sources' log (engine.atlas.source_log, atlas format 3): a commit writes what changed, not every
source; a build from many GeoTIFFs opens with the entries it wrote; a crash's tail, a rewrite cut short and
a version-2 atlas are all read right; a damaged log is one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import Affine

from engine.atlas import build_atlas, open_atlas
from engine.atlas import source_log as sl
from engine.atlas.format import ATLAS_VERSION, MANIFEST
from engine.atlas.writer import AtlasWriter
from engine.bundle.format import load_bundle
from engine.errors import AtlasError
from tests.engine.atlas.handmade import HandmadeBundle, write_geotiff


def _entry(k: int) -> dict:
    return {"index": k, "path": f"/data/ortho/tile-{k:05d}.tif", "status": "building", "tiles": 0, "parts_done": 0,
            "tile_px": [64, 64], "overview": None, "error": None}


def _lines(root: Path) -> list[dict]:
    """The log's counted lines, read here without the module's reader."""
    spec = json.loads((root / MANIFEST).read_text())["source_log"]
    data = (root / spec["file"]).read_bytes()[:spec["bytes"]]
    return [json.loads(line) for line in data.splitlines()]


def test_a_commit_appends_only_the_entries_that_changed(tmp_path: Path, bundle: HandmadeBundle) -> None:
    b = load_bundle(bundle.path)
    root = tmp_path / "atlas"
    with AtlasWriter(root, b, {"thumbnail_px": 8}) as w:
        entries = [w.add_source(_entry(k)) for k in range(300)]
        w.commit()
        assert [e["index"] for e in _lines(root)] == list(range(300))
        manifest_bytes = (root / MANIFEST).stat().st_size
        log_bytes = json.loads((root / MANIFEST).read_text())["source_log"]["bytes"]
        entries[17]["tiles"] += 40
        entries[17]["status"] = "complete"
        w.commit()
        lines = _lines(root)
        assert len(lines) == 301 and lines[-1] == {**_entry(17), "tiles": 40, "status": "complete"}
        added = json.loads((root / MANIFEST).read_text())["source_log"]["bytes"] - log_bytes
        assert added == len(json.dumps(lines[-1]).encode()) + 1  # one line, whatever the atlas holds
        # atlas.json holds no entry: its size does not grow with the sources
        assert "sources" not in json.loads((root / MANIFEST).read_text())
        assert abs((root / MANIFEST).stat().st_size - manifest_bytes) < 16
        w.commit()  # nothing changed: nothing appended
        assert len(_lines(root)) == 301
    atlas = open_atlas(root)
    assert atlas.manifest["format_version"] == ATLAS_VERSION == 3
    assert atlas.manifest["sources"][17]["tiles"] == 40 and atlas.manifest["sources"][18]["tiles"] == 0
    assert [s.index for s in atlas.sources] == list(range(300)) and atlas.sources[17].status == "complete"


def test_a_build_from_many_geotiffs_and_its_resume(tmp_path: Path, bundle: HandmadeBundle) -> None:
    rng = np.random.default_rng(3)
    tifs = []
    for k in range(12):
        rgb = rng.integers(20, 230, (64, 64, 3), dtype=np.uint8)
        tifs.append(write_geotiff(tmp_path / f"s{k}.tif", rgb, "EPSG:32632",
                                  Affine(2.0, 0, 690000 + k * 128, 0, -2.0, 5340000)))
    root = tmp_path / "atlas"
    report = build_atlas(root, bundle.path, imagery=tifs[:7], tile_px=32, search_index=False)
    assert report.tiles_added == 7 * 4
    lines = _lines(root)
    # every entry's last line is "complete" with its 4 tiles; sources in the order given
    last = {e["index"]: e for e in lines}
    assert sorted(last) == list(range(7)) and all(e["status"] == "complete" and e["tiles"] == 4 for e in last.values())
    assert [Path(last[k]["path"]).name for k in range(7)] == [f"s{k}.tif" for k in range(7)]
    # the same build with more files: the first seven are found (not added twice), five more are added
    report = build_atlas(root, bundle.path, imagery=tifs, tile_px=32, search_index=False)
    assert report.tiles_added == 5 * 4
    atlas = open_atlas(root)
    assert len(atlas.sources) == 12 and len(atlas.tiles) == 48
    assert np.bincount(np.asarray(atlas.tiles.source), minlength=12).tolist() == [4] * 12
    assert all(atlas.overview(k)[0].shape[2] == 4 for k in range(12))  # overview files named by the entries


def test_a_crash_tail_is_ignored_and_cut_off(tmp_path: Path, bundle: HandmadeBundle) -> None:
    b = load_bundle(bundle.path)
    root = tmp_path / "atlas"
    with AtlasWriter(root, b, {"thumbnail_px": 8}) as w:
        for k in range(3):
            w.add_source(_entry(k))
        w.commit()
    spec = json.loads((root / MANIFEST).read_text())["source_log"]
    with open(root / spec["file"], "ab") as f:  # a commit killed between the log and atlas.json
        f.write(json.dumps({**_entry(1), "status": "complete"}).encode() + b"\n{\"index\": 2, \"tru")
    assert open_atlas(root).sources[1].status == "building"
    with AtlasWriter(root, b, create=False) as w:
        assert (root / spec["file"]).stat().st_size == spec["bytes"]  # the next writer cuts the tail off
        w.manifest["sources"][2]["status"] = "complete"
        w.commit()
    assert [s.status for s in open_atlas(root).sources] == ["building", "building", "complete"]


def test_a_log_mostly_superseded_is_rewritten_and_the_old_one_removed(
        tmp_path: Path, bundle: HandmadeBundle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sl, "COMPACT_MIN_BYTES", 4096)
    b = load_bundle(bundle.path)
    root = tmp_path / "atlas"
    with AtlasWriter(root, b, {"thumbnail_px": 8}) as w:
        entries = [w.add_source(_entry(k)) for k in range(4)]
        w.commit()
        for part in range(200):  # one source's parts, committed one by one
            entries[2]["parts_done"] = part + 1
            w.commit()
        name = json.loads((root / MANIFEST).read_text())["source_log"]["file"]
        assert name != "sources.0.jsonl" and not (root / "sources.0.jsonl").exists()
        logs = sorted(p.name for p in root.glob("sources.*.jsonl"))
        assert logs == [name]
        assert (root / name).stat().st_size <= max(sl.COMPACT_FACTOR * 4 * 200, 4096)
    assert open_atlas(root).manifest["sources"][2]["parts_done"] == 200
    # A rewrite cut short leaves a file atlas.json does not name: the next writer removes it.
    (root / "sources.99.jsonl").write_text(json.dumps(_entry(0)) + "\n")
    with AtlasWriter(root, b, create=False):
        pass
    assert sorted(p.name for p in root.glob("sources.*.jsonl")) == [name]
    assert open_atlas(root).manifest["sources"][2]["parts_done"] == 200


def test_a_version_2_atlas_opens_and_becomes_version_3_when_extended(tmp_path: Path, bundle: HandmadeBundle) -> None:
    b = load_bundle(bundle.path)
    root = tmp_path / "atlas"
    with AtlasWriter(root, b, {"thumbnail_px": 8}) as w:
        for k in range(5):
            w.add_source({**_entry(k), "status": "complete", "tiles": k})
        w.commit()
    # the same atlas as version 2 wrote it: the entries inside atlas.json, no log
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["sources"] = [e for e in _lines(root)]
    del manifest["source_log"]
    manifest["format_version"] = 2
    (root / MANIFEST).write_text(json.dumps(manifest))
    (root / "sources.0.jsonl").unlink()
    assert [s.tiles for s in open_atlas(root).sources] == [0, 1, 2, 3, 4]
    with AtlasWriter(root, b, create=False) as w:
        w.manifest["sources"][4]["tiles"] = 9
        w.add_source({**_entry(5), "tiles": 6})
        w.commit()
    on_disk = json.loads((root / MANIFEST).read_text())
    assert on_disk["format_version"] == 3 and "sources" not in on_disk
    assert [s.tiles for s in open_atlas(root).sources] == [0, 1, 2, 3, 9, 6]


def test_a_damaged_log_is_one_line_naming_it(tmp_path: Path, bundle: HandmadeBundle) -> None:
    b = load_bundle(bundle.path)
    root = tmp_path / "atlas"
    with AtlasWriter(root, b, {"thumbnail_px": 8}) as w:
        for k in range(3):
            w.add_source(_entry(k))
        w.commit()
    log_file = root / "sources.0.jsonl"
    data = log_file.read_bytes()
    log_file.write_bytes(data[:-10])  # shorter than atlas.json counts
    with pytest.raises(AtlasError, match="sources.0.jsonl.*the atlas counts") as err:
        open_atlas(root)
    assert "\n" not in str(err.value) and "build it again" in str(err.value)
    log_file.write_bytes(data.replace(b'"index": 1', b'"index": 7'))  # an entry missing
    with pytest.raises(AtlasError, match="sources.0.jsonl.*lacks 1 of the 3 sources"):
        open_atlas(root)
    log_file.unlink()
    with pytest.raises(AtlasError, match="sources.0.jsonl.*unreadable"):
        open_atlas(root)


def test_a_reader_beside_a_rewrite_reads_the_new_log(tmp_path: Path, bundle: HandmadeBundle,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """atlas.json read, then the log it names removed by a writer's rewrite: the reader reads again."""
    from engine.atlas import format as fmt

    b = load_bundle(bundle.path)
    root = tmp_path / "atlas"
    with AtlasWriter(root, b, {"thumbnail_px": 8}) as w:
        w.add_source(_entry(0))
        w.commit()
    real_read = sl.read_source_log
    calls = []

    def racing(path: Path, spec: dict, fix: str) -> list[dict]:
        calls.append(spec["file"])
        if len(calls) == 1:  # the writer switches logs between the reader's two reads
            (root / "sources.1.jsonl").write_bytes((root / "sources.0.jsonl").read_bytes())
            manifest = json.loads((root / MANIFEST).read_text())
            manifest["source_log"]["file"] = "sources.1.jsonl"
            (root / MANIFEST).write_text(json.dumps(manifest))
            (root / "sources.0.jsonl").unlink()
        return real_read(path, spec, fix)

    monkeypatch.setattr(sl, "read_source_log", racing)
    assert fmt.read_manifest(root)["sources"][0]["path"] == _entry(0)["path"]
    assert calls == ["sources.0.jsonl", "sources.1.jsonl"]
