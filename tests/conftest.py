"""Shared fixtures: the real data beside the project, and a way to run code with torch blocked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SOUNDSCAPE_SHARED", ROOT.parent / "shared"))
REALDATA = SHARED / "realdata"
REFERENCE = SHARED / "reference"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def realdata() -> Path:
    """../shared/realdata, or skip: the real recordings and GeoTIFFs are not in the repository."""
    if not (REALDATA / "audio").is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent (it lives beside the project, in ../shared)")
    return REALDATA


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE / "soundingearth_reference_cases.json").is_file():
        pytest.skip(f"reference cases {REFERENCE} are absent (they live beside the project, in ../shared)")
    return REFERENCE
