"""Engine fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.fixtures import make_pair_table


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 48-pair table (train 32, val 8, test 8), a cache folder, and one uninterrupted 'tiny' run."""
    from engine.cli import main

    root = tmp_path_factory.mktemp("tiny_world")
    make_pair_table(root / "pairs", n=48)
    paths = {"data": root / "pairs", "cache": root / "cache", "run": root / "run"}
    rc = main(["train", "--data", str(paths["data"]), "--preset", "tiny", "--out", str(paths["run"]),
               "--cache-dir", str(paths["cache"])])
    assert rc == 0
    return paths
