"""Building atlases: known embeddings, resuming, keeping work after failures, bundles, re-embedding."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from engine.atlas import AtlasBuildError, add_imagery, build_atlas, open_atlas, reembed_atlas
from engine.atlas.format import ATLAS_VERSION, MANIFEST
from engine.audio import chunk_spans, file_log_mel
from engine.errors import AtlasError, Cancelled
from engine.progress import Job
from tests.engine.atlas.handmade import HandmadeBundle, make_bundle, mercator_scene, read_json, source_entries
from tests.test_torch_free import run_blocked

ATLAS_FILES = ["tiles/lon.f8", "tiles/lat.f8", "tiles/footprint.f8", "tiles/source.i4", "tiles/grid.i4",
               "tiles/thumb.i8", "thumbnails.bin", "recordings/meta.jsonl"]


def _pair_table(folder: Path, audio: list[Path], extra_rows: list[list[str]] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "pairs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "longitude", "latitude", "image", "audio", "title"])
        for i, path in enumerate(audio):
            w.writerow([f"rec{i}", f"{11.60 + 0.01 * i:.4f}", f"{48.10 + 0.005 * i:.4f}", "", str(path), path.stem])
        for row in extra_rows:
            w.writerow(row)
    return folder / "pairs.csv"


def _files(atlas: Path, generation: int = 0) -> dict[str, bytes]:
    names = ATLAS_FILES + [f"tiles/embedding.{generation}.f4", f"tiles/sqnorm.{generation}.f4",
                           f"recordings/embedding.{generation}.f4"]
    return {n: (atlas / n).read_bytes() for n in names}


class CancelAfter(Job):
    """Cancels at the ``n``-th check, i.e. while working on the n-th item (a user pressing Cancel)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        if self.checks >= self.n:
            self.cancel()
        super().check()


def test_tiles_and_recordings_have_their_known_embeddings(tmp_path: Path, bundle: HandmadeBundle,
                                                           realdata: Path) -> None:
    scene, rgb, _ = mercator_scene(tmp_path / "scene.tif")
    audio = sorted((realdata / "audio").glob("S4A*.wav"))[:2] + [realdata / "audio" / "spinetail.wav"]
    table = _pair_table(tmp_path / "table", audio)
    # 64 px thumbnails: tiles are read at their own 64 px, so flat blocks stay exactly flat.
    report = build_atlas(tmp_path / "atlas", bundle.path, imagery=[scene], tile_px=64, recordings=table,
                         thumbnail_px=64)
    atlas = open_atlas(tmp_path / "atlas", bundle.path)
    # Tiles with at least half their pixels valid: columns 2-9 of rows 1-6 (the bottom row keeps 24 of 64
    # rows, the left two columns and the top row are nodata).
    expected = {(c, r) for c in range(2, 10) for r in range(1, 7)}
    assert {tuple(g) for g in atlas.tiles.grid} == expected and report.tiles_added == 48
    for i, (col, row) in enumerate(atlas.tiles.grid):
        colour = rgb[row * 64, col * 64].astype(np.float64)  # each 64 px block is one flat colour
        np.testing.assert_allclose(atlas.tiles.embeddings[i], bundle.image_embedding(colour), atol=1e-5)
        assert (np.abs(atlas.thumbnail(i).astype(int) - colour).max()) <= 3  # JPEG of a flat colour
    np.testing.assert_allclose(atlas.tiles.sqnorms, (np.asarray(atlas.tiles.embeddings) ** 2).sum(1), rtol=1e-5)
    # Recordings: the chunk rule (the mean of chunk embeddings), computed here from the front-end directly.
    fe = FrontEndConfig_default()
    for j, path in enumerate(audio):
        mel = file_log_mel(path, fe)
        chunks = [bundle.chunk_embedding(mel[:, a:b]) for a, b in chunk_spans(mel.shape[1], fe)]
        np.testing.assert_allclose(atlas.recordings.embeddings[j], np.mean(chunks, axis=0), atol=1e-4)
        assert atlas.recordings.paths[j] == str(path.resolve()) and atlas.recordings.ids[j] == f"rec{j}"
    assert atlas.recordings.durations[2] == pytest.approx(19.55, abs=0.01)
    assert isinstance(atlas.tiles.embeddings, np.memmap)  # opened without reading the arrays
    overview, bounds = atlas.overview(0)
    assert overview.shape[2] == 4 and bounds[0] < bounds[2] and bounds[1] < bounds[3]


def FrontEndConfig_default():  # noqa: N802 - reads like the class it returns
    from engine.audio import FrontEndConfig

    return FrontEndConfig()


def test_resuming_a_cancelled_build_gives_the_same_atlas(tmp_path: Path, bundle: HandmadeBundle,
                                                         imagery: Path, realdata: Path) -> None:
    inputs = {"imagery": [imagery / "RGB.byte.tif", imagery / "world.rgb.tif"], "tile_px": 32,
              "recordings": _pair_table(tmp_path / "t", sorted((realdata / "audio").glob("S4A*.wav"))[:5]),
              "part_tiles": 64}
    build_atlas(tmp_path / "whole", bundle.path, **inputs)
    whole = _files(tmp_path / "whole")

    with pytest.raises(Cancelled):
        build_atlas(tmp_path / "resumed", bundle.path, job=CancelAfter(150), **inputs)
    partial = read_json(tmp_path / "resumed" / MANIFEST)
    assert 0 < partial["tiles"]["count"] < len(whole["tiles/lon.f8"]) // 8  # some parts were kept
    first = source_entries(tmp_path / "resumed")[0]
    assert first["status"] == "building" and first["parts_done"] == 2
    # A crash in the middle of the next part leaves bytes that atlas.json does not count yet.
    with open(tmp_path / "resumed" / "tiles" / "embedding.0.f4", "ab") as f:
        f.write(b"\x00" * 1000)
    with open(tmp_path / "resumed" / "thumbnails.bin", "ab") as f:
        f.write(b"half a jpeg")
    report = build_atlas(tmp_path / "resumed", bundle.path, **inputs)
    assert report.tiles_added == len(whole["tiles/lon.f8"]) // 8 - partial["tiles"]["count"]
    assert _files(tmp_path / "resumed") == whole
    # Running it once more has nothing left to do; a tile size other than the one it was started with is
    # refused for a source that is not finished.
    with pytest.raises(Cancelled):
        build_atlas(tmp_path / "other", bundle.path, imagery=[imagery / "world.rgb.tif"], tile_px=32, part_tiles=8,
                    job=CancelAfter(20))
    with pytest.raises(AtlasBuildError, match="resume with the same tile size"):
        build_atlas(tmp_path / "other", bundle.path, imagery=[imagery / "world.rgb.tif"], tile_px=16)
    assert build_atlas(tmp_path / "other", bundle.path, imagery=imagery / "world.rgb.tif").tiles_added == 128 - 16
    assert build_atlas(tmp_path / "resumed", bundle.path, **inputs).tiles_added == 0
    assert _files(tmp_path / "resumed") == whole


def test_a_failing_input_keeps_what_was_built(tmp_path: Path, bundle: HandmadeBundle, imagery: Path) -> None:
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff at all")
    with pytest.raises(AtlasBuildError) as info:
        build_atlas(tmp_path / "atlas", bundle.path, imagery=[imagery / "world.rgb.tif", broken,
                                                              tmp_path / "missing.tif"], tile_px=64)
    assert str(info.value).startswith(str(broken)) and "(and 1 more failed input(s))" in str(info.value)
    assert "\n" not in str(info.value)
    atlas = open_atlas(tmp_path / "atlas")
    assert len(atlas.tiles) == 8 * 4
    assert [Path(s.path).resolve() for s in atlas.sources] == [(imagery / "world.rgb.tif").resolve()]
    # A source whose pixels are damaged half-way fails there; its finished parts are kept.
    damaged = tmp_path / "damaged.tif"
    with rasterio.open(damaged, "w", driver="GTiff", width=256, height=512, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4000000), compress="deflate",
                       blockysize=16) as dst:
        dst.write(np.random.default_rng(0).integers(0, 255, (3, 512, 256)).astype(np.uint8))
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2:len(data) // 2 + 2000] = b"\xff" * 2000  # garbles the strips of rows 240-271
    damaged.write_bytes(bytes(data))
    with pytest.raises(AtlasBuildError) as info:  # 64 px tiles: 4 per tile row, one tile row per part
        build_atlas(tmp_path / "atlas2", bundle.path, imagery=[damaged], tile_px=64, part_tiles=4)
    assert str(info.value).startswith(str(damaged)) and "read failed near pixel (0, 192)" in str(info.value)
    atlas = open_atlas(tmp_path / "atlas2")
    assert len(atlas.tiles) == 12 and atlas.sources[0].status == "failed"
    assert "truncated or corrupt" in atlas.sources[0].error


def test_another_bundle_is_refused_and_reembedding_matches_a_fresh_build(
        tmp_path: Path, bundle: HandmadeBundle, other_bundle: HandmadeBundle, imagery: Path, realdata: Path) -> None:
    table = _pair_table(tmp_path / "t", sorted((realdata / "audio").glob("S4A*.wav"))[:3])
    args = {"imagery": [imagery / "world.rgb.tif"], "tile_px": 32, "recordings": table}
    build_atlas(tmp_path / "a", bundle.path, **args)
    with pytest.raises(AtlasError) as info:
        open_atlas(tmp_path / "a", other_bundle.path)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "a")) and "was built with model bundle" in message
    assert "re-embed" in message and "\n" not in message
    with pytest.raises(AtlasError, match="was built with model bundle"):
        build_atlas(tmp_path / "a", other_bundle.path, **args)

    build_atlas(tmp_path / "fresh", other_bundle.path, **args)
    from engine.ecology.atlas_indices import add_atlas_indices

    add_atlas_indices(tmp_path / "a")  # what 'atlas build' does next: indices, each tile's nearest recordings
    old_neighbours = [tmp_path / "a" / "tiles" / name for name in ("neighbours.0.i4", "neighbour_weights.0.f4")]
    assert all(p.is_file() for p in old_neighbours)
    with pytest.raises(Cancelled):  # interrupted re-embedding: the atlas still works with the old bundle
        reembed_atlas(tmp_path / "a", other_bundle.path, job=CancelAfter(40))
    assert open_atlas(tmp_path / "a", bundle.path).reembed_pending == read_json(
        other_bundle.path / "manifest.json")["bundle_id"]
    reembed_atlas(tmp_path / "a", other_bundle.path)
    reembedded, fresh = open_atlas(tmp_path / "a", other_bundle.path), open_atlas(tmp_path / "fresh")
    np.testing.assert_allclose(reembedded.tiles.embeddings, fresh.tiles.embeddings, atol=1e-6)
    np.testing.assert_allclose(reembedded.recordings.embeddings, fresh.recordings.embeddings, atol=1e-6)
    assert reembedded.generation == 1 and not (tmp_path / "a" / "tiles" / "embedding.0.f4").exists()
    assert not any(p.exists() for p in old_neighbours)  # derived from the old embeddings: gone with them
    # Killed after switching generations, before removing the old files: running it again removes them.
    leftovers = [*old_neighbours, tmp_path / "a" / "tiles" / "embedding.0.f4", tmp_path / "a" / "recordings" / "embedding.0.f4"]
    for path in leftovers:
        path.write_bytes(b"\0" * 64)
    current = sorted(p.name for p in (tmp_path / "a" / "tiles").glob("*.1.*"))
    reembed_atlas(tmp_path / "a", other_bundle.path)
    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in (tmp_path / "a" / "tiles").glob("*.1.*")) == current and current
    with pytest.raises(AtlasError):
        open_atlas(tmp_path / "a", bundle.path)


def test_add_imagery_and_bad_atlas_folders(tmp_path: Path, bundle: HandmadeBundle, imagery: Path) -> None:
    build_atlas(tmp_path / "a", bundle.path, imagery=[imagery / "world.rgb.tif"], tile_px=64)
    scene, _, _ = mercator_scene(tmp_path / "scene.tif")
    add_imagery(tmp_path / "a", bundle.path, scene)  # uses the atlas's tile size (64 px)
    atlas = open_atlas(tmp_path / "a")
    assert len(atlas.sources) == 2 and len(atlas.tiles) == 32 + 48
    assert set(np.asarray(atlas.tiles.source)) == {0, 1}
    with pytest.raises(AtlasError, match="atlas not found"):
        add_imagery(tmp_path / "nowhere", bundle.path, scene)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(AtlasError, match="exists and is not an atlas"):
        build_atlas(tmp_path / "other", bundle.path)
    future = tmp_path / "future"
    shutil.copytree(tmp_path / "a", future)
    manifest = (future / MANIFEST).read_text().replace(f'"format_version": {ATLAS_VERSION}', '"format_version": 7')
    (future / MANIFEST).write_text(manifest)
    with pytest.raises(AtlasError, match="format version 7 is not supported"):
        open_atlas(future)
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "a", damaged)
    (damaged / "tiles" / "embedding.0.f4").write_bytes(b"\x00" * 64)
    with pytest.raises(AtlasError, match="embedding.0.f4: holds 64 bytes"):
        open_atlas(damaged)


def test_unreadable_recordings_are_skipped_with_their_reason(tmp_path: Path, bundle: HandmadeBundle,
                                                              realdata: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    table = _pair_table(tmp_path / "t", [realdata / "audio" / "spinetail.wav", bad],
                        [["far", "200", "0", "", str(bad), "x"]])
    report = build_atlas(tmp_path / "a", bundle.path, recordings=table)
    assert report.recordings_added == 1
    assert any(str(bad) in s and "not a readable audio file" in s for s in report.skipped)
    assert any("impossible coordinates" in s for s in report.skipped)
    # The table is read by the data layer (its summary); the unreadable file is found while embedding.
    assert report.summaries == [f"{table}: 3 rows: 2 usable, 1 bad coordinates"]
    assert report.skipped_count == 2 and report.describe().endswith("+1 recordings; 2 skipped")
    entry = read_json(tmp_path / "a" / MANIFEST)["recording_tables"][0]
    assert (entry["kind"], entry["skipped"], entry["rows_total"]) == ("pair-table", 2, 2)


def test_a_bundle_trained_on_spectrogram_jpegs_is_flagged_when_embedding_recordings(
        tmp_path: Path, realdata: Path, caplog: pytest.LogCaptureFixture) -> None:
    table = _pair_table(tmp_path / "t", [realdata / "audio" / "spinetail.wav"])
    for source, flagged in (("spectrogram", True), ("raw", False)):
        made = make_bundle(tmp_path / source, trained_on={"kind": "soundingearth", "audio_source": source})
        caplog.clear()
        build_atlas(tmp_path / f"a_{source}", made.path, recordings=table)
        assert any("spectrogram JPEGs" in r.getMessage() for r in caplog.records) == flagged


def test_atlas_builds_and_answers_without_torch(tmp_path: Path, bundle: HandmadeBundle, imagery: Path) -> None:
    code = f"""
        from engine.atlas import build_atlas, open_atlas, sound_query, locate_tile
        build_atlas({str(tmp_path / 'a')!r}, {str(bundle.path)!r}, imagery=[{str(imagery / 'world.rgb.tif')!r}],
                    tile_px=64)
        atlas = open_atlas({str(tmp_path / 'a')!r}, {str(bundle.path)!r})
        i = locate_tile(atlas, 10.0, 50.0)
        print(len(atlas.tiles), i, sound_query(atlas, atlas.tiles.embeddings[i], 1).top[0].index)
        import sys; assert 'torch' not in sys.modules
    """
    result = run_blocked(code)
    assert result.returncode == 0, result.stderr
    # 8 x 4 tiles of 45 degrees; (10 E, 50 N) is in column 4, row 0.
    assert result.stdout.split() == ["32", "4", "4"]
