"""Messages that said the wrong thing: --assume-crs suggested after it was given (or where it cannot help),
a semicolon CSV reported as five missing columns, a library's error cut mid-word."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from rasterio.transform import Affine

from engine.atlas.imagery import ImagerySource
from engine.errors import DatasetError, ImageFileError, brief
from tests.engine.atlas.handmade import write_geotiff

PIXELS = np.full((100, 120, 3), 90, np.uint8)


def test_a_wrong_assumed_crs_is_named_not_suggested_again(tmp_path: Path) -> None:
    # UTM-like metres read as degrees: the corners land far outside the Earth.
    no_crs = write_geotiff(tmp_path / "no_crs.tif", PIXELS, None, Affine(10, 0, 500000, 0, -10, 4000000))
    with pytest.raises(ImageFileError) as caught:
        ImagerySource(no_crs, assume_crs="EPSG:4326")
    text = str(caught.value)
    assert "--assume-crs EPSG:4326 does not fit" in text and "pass --assume-crs" not in text
    # without the option, the option is the advice
    with pytest.raises(ImageFileError, match="pass --assume-crs EPSG:XXXX"):
        ImagerySource(no_crs)


def test_a_file_with_its_own_wrong_crs_is_not_told_to_use_assume_crs(tmp_path: Path) -> None:
    wrong = write_geotiff(tmp_path / "wrong.tif", PIXELS, "EPSG:4326", Affine(10, 0, 500000, 0, -10, 4000000))
    with pytest.raises(ImageFileError) as caught:
        ImagerySource(wrong, assume_crs="EPSG:32633")  # ignored: the file has a CRS
    assert "--assume-crs" not in str(caught.value) and "gdal_edit.py" in str(caught.value)


def test_a_raster_without_geotransform_is_not_told_to_use_assume_crs(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tif"
    with pytest.warns(Warning):
        write_geotiff(plain, PIXELS, None, Affine.identity())
    for given in (None, "EPSG:32633"):
        with pytest.raises(ImageFileError) as caught:
            ImagerySource(plain, assume_crs=given)
        assert "no georeferencing" in str(caught.value) and "--assume-crs" not in str(caught.value)


@pytest.mark.parametrize("delimiter, name", [(";", "';'"), ("\t", "tab")])
def test_a_table_with_another_delimiter_says_so(delimiter: str, name: str, tmp_path: Path) -> None:
    from engine.data.pair_table import scan_pair_table

    table = tmp_path / "pairs.csv"
    rows = [["id", "longitude", "latitude", "image", "audio"], ["a", "10,5", "50,1", "a.jpg", "a.wav"]]
    table.write_text("\n".join(delimiter.join(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        scan_pair_table(table)
    text = str(caught.value)
    assert f"seems to use {name} as delimiter" in text and "save it comma-separated" in text
    assert "missing column" not in text


def test_a_table_really_missing_columns_still_says_which(tmp_path: Path) -> None:
    from engine.data.pair_table import scan_pair_table

    table = tmp_path / "pairs.csv"
    table.write_text("id;name\na;b\n")
    with pytest.raises(DatasetError, match="missing column"):
        scan_pair_table(table)


def test_library_errors_are_cut_at_a_word_boundary() -> None:
    long = ("PytorchStreamReader failed reading zip archive: failed finding central directory. This is an "
            "internal miniz error. If you are seeing this error, there is a high likelihood that your checkpoint "
            "file is corrupted.\nsecond line")
    text = brief(RuntimeError(long))
    assert len(text) <= 160 and text.endswith("...") and "second line" not in text
    words = set(re.findall(r"[\w.,:']+", long))
    assert all(w in words for w in text[:-3].split())  # every word whole, none cut


def test_a_damaged_checkpoint_message_keeps_whole_words(tmp_path: Path) -> None:
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.errors import CheckpointError

    bad = tmp_path / "last.pt"
    # a checkpoint holding an object weights_only refuses: PyTorch's long, colour-coded refusal
    torch.save({"image_encoder": {}, "audio_encoder": {}, "where": PurePosixPath("/x")}, bad)
    with pytest.raises(Exception) as raw:
        torch.load(bad, weights_only=True)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(bad)
    inner = re.search(r"cannot be loaded \((.*)\); the file is damaged", str(caught.value)).group(1)
    original = re.sub(r"\x1b\[[0-9;]*m", "", f"{type(raw.value).__name__}: {raw.value}")
    assert "\x1b" not in str(caught.value)
    shown = inner.removesuffix("...").split()
    assert shown and all(re.search(rf"(^|\s){re.escape(w)}(\s|$)", original) for w in shown), inner
