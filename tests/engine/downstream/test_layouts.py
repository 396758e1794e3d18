"""Official layouts, splits, DeepGlobe masks and the bad inputs a user can hand us (torch-free parts)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.downstream.decode import read_rgb
from engine.downstream.deepglobe import CODES, decode_mask, encode_mask, list_deepglobe, read_mask
from engine.downstream.layouts import SCENE_DATASETS, list_advance, list_scene_dataset
from engine.downstream.splits import alternate_split, random_split, stratified_split
from engine.errors import DatasetError, ImageFileError
from tests.engine.downstream.make_fixtures import ADVANCE_CLASSES


def test_official_class_counts() -> None:
    assert {k: len(s.classes) for k, s in SCENE_DATASETS.items()} == {"ucmerced": 21, "aid": 30, "resisc45": 45}
    for spec in SCENE_DATASETS.values():
        assert len({c.lower() for c in spec.classes}) == len(spec.classes)


@pytest.mark.parametrize("key,inner", [("ucmerced", "UCMerced_LandUse/Images"), ("aid", "AID"),
                                       ("resisc45", "NWPU-RESISC45")])
def test_scene_dataset_found_from_any_level(scene_root: Path, key: str, inner: str) -> None:
    n = len(SCENE_DATASETS[key].classes)
    for root in (scene_root, scene_root / inner.split("/")[0], scene_root / inner):
        samples = list_scene_dataset(root, key)
        assert samples.folder == scene_root / inner
        assert len(samples.paths) == 4 * n
        assert samples.labels == [k for k in range(n) for _ in range(4)]
    first = list_scene_dataset(scene_root, key).paths[0]
    assert first.parent.name == SCENE_DATASETS[key].classes[0]
    assert first.suffix == (".tif" if key == "ucmerced" else ".jpg")


def test_missing_class_folder_is_named(scene_root: Path, copy_of) -> None:
    root = copy_of(scene_root / "UCMerced_LandUse")
    shutil.rmtree(root / "Images" / "harbor")
    with pytest.raises(DatasetError, match=r"Images/harbor: class folder missing \(1 of 21 missing: harbor\)"):
        list_scene_dataset(root, "ucmerced")


def test_empty_class_folder_is_named(scene_root: Path, copy_of) -> None:
    root = copy_of(scene_root / "AID")
    for f in (root / "Beach").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"AID/Beach: class folder holds no images"):
        list_scene_dataset(root, "aid")


@pytest.mark.parametrize("asked,actual,title", [
    ("ucmerced", "NWPU-RESISC45", "NWPU-RESISC45"),
    ("aid", "UCMerced_LandUse", "UC Merced Land Use"),
    ("resisc45", "AID", "AID"),
])
def test_another_scene_dataset_is_refused_by_name(scene_root: Path, asked: str, actual: str, title: str) -> None:
    with pytest.raises(DatasetError, match=f"is {title}, not {SCENE_DATASETS[asked].title}") as err:
        list_scene_dataset(scene_root / actual, asked)
    assert "\n" not in str(err.value)


def test_advance_and_deepglobe_roots_are_refused_by_name(advance_root: Path, deepglobe_root: Path,
                                                         scene_root: Path) -> None:
    with pytest.raises(DatasetError, match="is ADVANCE, not UC Merced Land Use"):
        list_scene_dataset(advance_root, "ucmerced")
    with pytest.raises(DatasetError, match="is DeepGlobe Land Cover, not AID"):
        list_scene_dataset(deepglobe_root, "aid")
    with pytest.raises(DatasetError, match="is AID, not ADVANCE"):
        list_advance(scene_root / "AID")
    with pytest.raises(DatasetError, match="is ADVANCE, not DeepGlobe Land Cover"):
        list_deepglobe(advance_root)
    with pytest.raises(DatasetError, match="dataset folder not found"):
        list_scene_dataset(scene_root / "nowhere", "aid")


def test_stratified_split_is_seeded_stratified_and_complete() -> None:
    labels = np.repeat(np.arange(5), [10, 10, 7, 4, 2])
    train, test = stratified_split(labels, 0.8, seed=3)
    assert np.intersect1d(train, test).size == 0 and np.union1d(train, test).size == labels.size
    # round(n * 0.8) per class, at least one on each side: 8, 8, 6 (5.6), 3 (3.2), 1 (1.6 -> 2, capped at n-1)
    assert np.bincount(labels[train]).tolist() == [8, 8, 6, 3, 1]
    again = stratified_split(labels, 0.8, seed=3)
    assert np.array_equal(train, again[0])
    assert not np.array_equal(train, stratified_split(labels, 0.8, seed=4)[0])


def test_alternate_and_random_splits() -> None:
    train, test = alternate_split(7)
    assert train.tolist() == [0, 2, 4, 6] and test.tolist() == [1, 3, 5]
    train, test = random_split(10, 0.8, seed=0)
    assert len(train) == 8 and len(test) == 2 and sorted(np.concatenate([train, test]).tolist()) == list(range(10))


def test_advance_pairs_and_unpaired_files(advance_root: Path, copy_of) -> None:
    samples = list_advance(advance_root)
    assert samples.classes == sorted(ADVANCE_CLASSES) and len(samples.images) == 4 * 13
    assert all(i.stem == s.stem and i.parent.name == s.parent.name for i, s in zip(samples.images, samples.sounds, strict=True))
    root = copy_of(advance_root)
    lonely = root / "sound" / "beach" / sorted((root / "sound" / "beach").iterdir())[0].name
    lonely.unlink()
    samples = list_advance(root)
    assert len(samples.images) == 4 * 13 - 1
    assert samples.unpaired == [str(root / "vision" / "beach" / (lonely.stem + ".jpg"))]


def test_advance_missing_class_folder_is_named(advance_root: Path, copy_of) -> None:
    root = copy_of(advance_root)
    shutil.rmtree(root / "sound" / "lake")
    with pytest.raises(DatasetError, match=r"sound/lake: class folder missing"):
        list_advance(root)


def test_mask_codes_round_trip_and_tolerate_compression_noise() -> None:
    labels = np.array([[0, 1, 2], [3, 4, 5], [-1, 0, 5]])
    rgb = encode_mask(labels)
    assert rgb[0, 0].tolist() == [0, 255, 255] and rgb[2, 0].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(decode_mask(rgb, "m.png"), labels)
    noisy = np.clip(rgb.astype(int) + np.where(rgb > 127, -6, 6), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(decode_mask(noisy, "m.png"), labels)
    assert len(CODES) == 7


def test_mask_with_a_colour_outside_the_codes_is_named(tmp_path: Path) -> None:
    rgb = encode_mask(np.zeros((8, 8), np.int64))
    rgb[2:4, 5] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "7_mask.png")
    with pytest.raises(ImageFileError, match=r"7_mask.png: colour \(255, 0, 0\) at x=5, y=2 is not one of the "
                                             r"7 DeepGlobe codes \(2 pixels\)"):
        read_mask(tmp_path / "7_mask.png")
    grey = np.full((8, 8, 3), 128, np.uint8)
    with pytest.raises(ImageFileError, match=r"is not a DeepGlobe mask: 100.0% of pixels"):
        decode_mask(grey, tmp_path / "grey.png")


def test_deepglobe_pairs_and_missing_masks(deepglobe_root: Path, copy_of) -> None:
    samples = list_deepglobe(deepglobe_root)
    assert samples.ids == [str(100 + 37 * i) for i in range(10)]
    assert list_deepglobe(deepglobe_root / "train").ids == samples.ids
    root = copy_of(deepglobe_root)
    (root / "train" / "137_mask.png").unlink()
    samples = list_deepglobe(root)
    assert "137" not in samples.ids and samples.unpaired == [str(root / "train" / "137_sat.jpg")]


def test_images_that_do_not_decode_are_named(tmp_path: Path) -> None:
    garbage = tmp_path / "beach00.tif"
    garbage.write_bytes(b"not a tiff at all")
    with pytest.raises(ImageFileError, match=r"beach00.tif: cannot be decoded"):
        read_rgb(garbage)
    good = tmp_path / "good.jpg"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(good, quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ImageFileError, match=r"truncated.jpg: cannot be decoded"):
        read_rgb(truncated)
    assert read_rgb(good, 32).shape == (32, 32, 3)
