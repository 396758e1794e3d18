"""Tiny downstream datasets, generated once per test session in their official layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.engine.downstream.make_fixtures import write_advance, write_deepglobe, write_scene_dataset


@pytest.fixture(scope="session")
def scene_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding UCMerced_LandUse/, AID/ and NWPU-RESISC45/ (4 images per class, 32 px)."""
    root = tmp_path_factory.mktemp("scenes")
    for key in ("ucmerced", "aid", "resisc45"):
        write_scene_dataset(root, key, per_class=4, size=32, seed=1)
    return root


@pytest.fixture(scope="session")
def advance_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_advance(tmp_path_factory.mktemp("advance"), per_class=4, size=32, seed=2)


@pytest.fixture(scope="session")
def deepglobe_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_deepglobe(tmp_path_factory.mktemp("deepglobe"), n_images=10, size=64, block=16, seed=3)


@pytest.fixture()
def copy_of(tmp_path: Path):
    """Copy a session fixture so a test may damage it."""

    def make(src: Path) -> Path:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        return dst

    return make


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These tiny models gain nothing from a second thread, and on a shared, busy machine OpenMP threads
    that wait for each other made a test 2-10 times slower; the previous setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
