"""Edited or damaged files get one line naming the file and the fix, never a traceback: a bundle manifest
whose facts disagree with its graphs, atlas.json counts that are negative or absurd, a truncated
thumbnails.bin, and an image too large to decode."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.atlas import build_atlas, open_atlas
from engine.bundle.format import MANIFEST_FILE, load_bundle
from engine.cli import main
from engine.errors import AtlasError, BundleError
from engine.inference.encoders import BundleEncoders
from tests.engine.atlas.handmade import make_bundle, mercator_scene


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def _edit_manifest(folder: Path, change) -> None:
    path = folder / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("field, value, which, words", [
    ("embedding_dim", 16, "image", "says embedding_dim 16, but image_encoder.onnx gives 8-d"),
    ("embedding_dim", 16, "audio", "says embedding_dim 16, but audio_encoder.onnx gives 8-d"),
    ("image.size", 48, "image", "says image.size 48, but image_encoder.onnx takes 32"),
])
def test_an_edited_bundle_manifest_is_caught_against_the_graphs(field: str, value: int, which: str, words: str,
                                                                 tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "b", dim=8, image_size=32).path

    def change(m: dict) -> None:
        if field == "image.size":
            m["image"]["size"] = value
        else:
            m[field] = value

    _edit_manifest(folder, change)
    encoders = BundleEncoders(load_bundle(folder))  # the hashes cover the .onnx files, not the manifest
    with pytest.raises(BundleError) as caught:
        if which == "image":
            encoders.embed_images(np.zeros((1, value if field == "image.size" else 32,
                                            value if field == "image.size" else 32, 3), np.uint8))
        else:
            encoders.embed_log_mel(np.zeros((encoders.bundle.front_end.n_mels, 300), np.float32))
    message = str(caught.value)
    assert words in message and str(folder / MANIFEST_FILE) in message and "\n" not in message


def test_an_edited_manifest_from_the_command_line_is_one_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    folder = make_bundle(tmp_path / "b", dim=8, image_size=32).path
    _edit_manifest(folder, lambda m: m["image"].update(size=40))
    png = tmp_path / "tile.png"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(png)
    assert main(["embed", "--bundle", str(folder), "--image", str(png), "--json"]) == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and "image.size 40" in err[0], err


def _header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (8-bit RGB); Pillow's guard reads only the header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) +
                     chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_image_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    folder = make_bundle(tmp_path / "b", dim=8, image_size=32).path
    png = _header_only_png(tmp_path / "huge.png", 20_000, 20_000)  # 400 megapixels, as in the issue
    assert main(["embed", "--bundle", str(folder), "--image", str(png)]) == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and str(png) in err[0] and "400 megapixels" in err[0], err
    assert f"{2 * limit / 1e6:.0f} megapixels" in err[0]
    assert Image.MAX_IMAGE_PIXELS == limit  # the guard itself is left as it was


@pytest.fixture
def small_atlas(tmp_path: Path) -> tuple[Path, Path]:
    bundle = make_bundle(tmp_path / "b", dim=8, image_size=32)
    tif, _, _ = mercator_scene(tmp_path / "scene.tif")
    build_atlas(tmp_path / "atlas", bundle.path, imagery=[tif], tile_px=64)
    return tmp_path / "atlas", bundle.path


@pytest.mark.parametrize("section, key, value", [
    ("tiles", "count", -3), ("tiles", "count", 10**15), ("recordings", "count", -1), (None, "embedding_dim", 0),
    ("tiles", "count", "12"),
])
def test_atlas_counts_that_were_edited_are_refused_on_open_and_build(section, key, value, small_atlas,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    atlas_dir, bundle = small_atlas
    manifest_path = atlas_dir / "atlas.json"
    m = json.loads(manifest_path.read_text())
    (m[section] if section else m)[key] = value
    manifest_path.write_text(json.dumps(m))
    with pytest.raises(AtlasError) as opened:
        open_atlas(atlas_dir)
    assert "damaged" in str(opened.value)
    for argv in (["atlas", "query", "--atlas", str(atlas_dir), "--tile", "0"],
                 ["atlas", "build", "--bundle", str(bundle), "--out", str(atlas_dir)]):
        assert main(argv) == 2
        err = _error_lines(capsys)
        assert len(err) == 1 and err[0].startswith("error: ") and "damaged" in err[0], err


def test_query_and_build_give_the_same_advice_for_a_short_array(small_atlas,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    atlas_dir, bundle = small_atlas
    lon = atlas_dir / "tiles" / "lon.f8"
    lon.write_bytes(lon.read_bytes()[:-8])  # one tile's centre lost
    advice = []
    for argv in (["atlas", "query", "--atlas", str(atlas_dir), "--tile", "0"],
                 ["atlas", "build", "--bundle", str(bundle), "--out", str(atlas_dir)]):
        assert main(argv) == 2
        err = _error_lines(capsys)
        assert len(err) == 1 and str(lon) in err[0], err
        advice.append(err[0].split("; ", 1)[1])
    assert advice[0] == advice[1] and "build it again into a new folder" in advice[0]


def test_a_truncated_thumbnails_file_is_refused_on_open(small_atlas) -> None:
    atlas_dir, _ = small_atlas
    thumbs = atlas_dir / "thumbnails.bin"
    assert open_atlas(atlas_dir).thumbnail(0).shape[2] == 3
    thumbs.write_bytes(thumbs.read_bytes()[:-500])
    with pytest.raises(AtlasError) as caught:
        open_atlas(atlas_dir)
    assert str(thumbs) in str(caught.value) and "damaged" in str(caught.value)


@pytest.mark.parametrize("option, value", [("--tile-size-m", "inf"), ("--tile-size-m", "nan"),
                                           ("--tile-size-m", "-5"), ("--thumbnail-px", "0"), ("--threads", "0")])
def test_unusable_build_numbers_are_one_line_before_anything_is_written(option: str, value: str, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path / "b", dim=8, image_size=32)
    tif, _, _ = mercator_scene(tmp_path / "scene.tif")
    out = tmp_path / "atlas"
    assert main(["atlas", "build", "--bundle", str(bundle.path), "--out", str(out), "--imagery", str(tif),
                 f"{option}={value}"]) == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and err[0].startswith(f"error: {option}"), err
    assert not out.exists()


@pytest.mark.parametrize("inside", [False, True])
def test_atlas_out_that_is_a_file_is_one_line(inside: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path / "b", dim=8, image_size=32)
    tif, _, _ = mercator_scene(tmp_path / "scene.tif")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    out = a_file / "atlas" if inside else a_file
    assert main(["atlas", "build", "--bundle", str(bundle.path), "--out", str(out), "--imagery", str(tif),
                 "--tile-px", "64"]) == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and err[0].startswith(f"error: {out}") and "Traceback" not in err[0], err
    assert a_file.read_text() == "keep me"
