"""The packaging scripts (packaging/*.py) are plain scripts, not a package: make them importable."""

from __future__ import annotations

import sys

from tests.conftest import ROOT

PACKAGING = ROOT / "packaging"
if str(PACKAGING) not in sys.path:
    sys.path.insert(0, str(PACKAGING))
