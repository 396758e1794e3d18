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
               "--sample-cache-dir", str(paths["cache"])])
    assert rc == 0
    return paths


@pytest.fixture(scope="session")
def demo_world_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``tiny`` demo world of seed 0 (64 pairs: train 44, val 10, test 10), generated once per
    session in about 2 s. Tests only read it."""
    from engine.demo_world import generate_world

    out = tmp_path_factory.mktemp("demo_world") / "world"
    generate_world(out, seed=0, size="tiny")
    return out


@pytest.fixture(scope="session")
def demo_run_tiny(demo_world_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of the ``tiny`` preset trained on :func:`demo_world_tiny` through ``engine.cli.main``, as a
    user would (a few seconds). Tests only read it."""
    from engine.cli import main

    root = tmp_path_factory.mktemp("demo_run")
    rc = main(["train", "--data", str(demo_world_tiny), "--preset", "tiny", "--out", str(root / "run"),
               "--sample-cache-dir", str(root / "cache")])
    assert rc == 0
    return root / "run"


@pytest.fixture(scope="session")
def demo_bundle_tiny(demo_run_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`demo_run_tiny` exported as a model bundle (fp32, checked against PyTorch on the run's own
    pairs). Tests only read it."""
    from engine.export import export_bundle

    out = tmp_path_factory.mktemp("demo_bundle") / "bundle"
    export_bundle(demo_run_tiny, out)
    return out
