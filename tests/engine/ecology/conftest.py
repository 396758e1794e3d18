"""Fixtures for the ecology and export tests: a hand-made bundle, the real recordings, and an atlas of the
real UTM GeoTIFF with the real recordings and their indices."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.engine.atlas.handmade import HandmadeBundle, make_bundle

pytest.importorskip("maad", reason="scikit-maad (the engine extra) is not installed")


@pytest.fixture(scope="session")
def real_audio(realdata: Path) -> list[Path]:
    files = sorted((realdata / "audio").glob("S4A03895_20190522_*.wav"))
    if len(files) < 12:
        pytest.skip(f"{realdata / 'audio'} lacks the twelve Song Meter recordings")
    return files


@pytest.fixture(scope="session")
def eco_bundle(tmp_path_factory: pytest.TempPathFactory) -> HandmadeBundle:
    return make_bundle(tmp_path_factory.mktemp("eco_bundle") / "b", seed=4)


def write_pair_table(folder: Path, audio: list[Path], lonlat: list[tuple[float, float]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "pairs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "longitude", "latitude", "image", "audio", "title"])
        for i, (path, (lon, lat)) in enumerate(zip(audio, lonlat, strict=True)):
            w.writerow([f"rec{i}", f"{lon:.5f}", f"{lat:.5f}", "", str(path), path.stem])
    return folder / "pairs.csv"


@pytest.fixture(scope="session")
def real_atlas(tmp_path_factory: pytest.TempPathFactory, realdata: Path, real_audio: list[Path],
               eco_bundle: HandmadeBundle) -> Path:
    """An atlas of RGB.byte.tif (UTM 18N) in 64 px tiles, with the twelve real recordings and their indices."""
    from engine.atlas import build_atlas
    from engine.ecology.atlas_indices import add_atlas_indices

    imagery = realdata / "imagery" / "RGB.byte.tif"
    if not imagery.is_file():
        pytest.skip(f"{imagery} is absent")
    root = tmp_path_factory.mktemp("real_atlas")
    lonlat = [(-77.9 + 0.03 * i, 24.5 + 0.01 * i) for i in range(len(real_audio))]
    table = write_pair_table(root / "table", real_audio, lonlat)
    build_atlas(root / "atlas", eco_bundle.path, imagery=[imagery], tile_px=64, recordings=table, thumbnail_px=16)
    add_atlas_indices(root / "atlas", window_s=60.0)
    return root / "atlas"
