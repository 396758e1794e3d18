"""Fixtures for the atlas tests: hand-made bundles with known embeddings (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.atlas.handmade import HandmadeBundle, make_bundle


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> HandmadeBundle:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "b0", seed=0)


@pytest.fixture(scope="session")
def other_bundle(tmp_path_factory: pytest.TempPathFactory) -> HandmadeBundle:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "b1", seed=1)


@pytest.fixture(scope="session")
def imagery(realdata: Path) -> Path:
    folder = realdata / "imagery"
    if not (folder / "RGB.byte.tif").is_file():
        pytest.skip(f"{folder} lacks the real GeoTIFFs")
    return folder
