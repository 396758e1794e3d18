"""The app and the engine's portable modules import with torch made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

# Modules the app may use; each must import in a Python where torch cannot be imported.
PORTABLE_MODULES = [
    "engine.errors",
    "engine.progress",
    "engine.audio",
    "engine.cli",
    "engine.data.source",
    "engine.data.cache",
    "engine.data.splits",
    "engine.evaluate",
    "engine.demo_world",
    "engine.commands.demo_world",
    "engine.commands.downstream",
    "engine.downstream.metrics",
    "engine.downstream.layouts",
    "engine.downstream.deepglobe",
    "engine.downstream.splits",
    "engine.downstream.results",
    "engine.downstream.report",
    "engine.shards.format",
    "engine.shards.prepare",
    "engine.shards.synthetic",
    "app.main",
    "engine.geo",
    "engine.formats.bundle",
    "engine.runtime.encoders",
    "engine.runtime.images",
    "engine.atlas",
    "engine.atlas.query",
    "engine.atlas.ann",
    "engine.atlas.distributed",
    "engine.atlas.synthetic",
    "engine.commands.atlas",
    "engine.files",
    "engine.interop.conventions",
    "engine.ecology",
    "engine.ecology.indices",
    "engine.ecology.table",
    "engine.ecology.maps",
    "engine.ecology.atlas_indices",
    "engine.atlas.indices",
    "engine.gis",
    "engine.gis.raster",
    "engine.gis.vector",
    "engine.gis.tables",
    "engine.gis.figures",
    "engine.commands.indices",
    "engine.commands.atlas_export",
    "engine.campaign",
    "engine.campaign.table",
    "engine.campaign.scan",
    "engine.campaign.recorders",
    "engine.campaign.sites",
    "engine.campaign.footprints",
    "engine.campaign.report",
    "engine.campaign.writers",
    "engine.campaign.demo",
    "engine.campaign.demo_sounds",
    "engine.campaign.demo_files",
    "engine.commands.campaign",
    "app.state",
    "app.services.geo",
    "app.services.settings",
    "app.services.ring_buffer",
    "app.services.audio_io",
    "app.services.map_layout",
    "app.services.spectrogram",
    "app.services.search",
    "app.services.project",
    "app.services.demo",
    "app.services.training",
    "app.workers",
    "app.controllers",
    "app.launch",
    "app.widgets.main_window",
]

BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys
    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('torch', 'torchvision', 'torchaudio'):
                raise ImportError(f'{name} is blocked in this test')
            return None
    sys.meta_path.insert(0, _Block())
""")


def run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_blocker_really_blocks_torch() -> None:
    result = run_blocked("import torch")
    assert result.returncode != 0 and "blocked in this test" in result.stderr


def test_portable_modules_import_without_torch() -> None:
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in PORTABLE_MODULES)
    code += "import sys; assert not any(m.split('.')[0] == 'torch' for m in sys.modules)\n"
    result = run_blocked(code)
    assert result.returncode == 0, result.stderr


def test_engine_help_lists_commands_without_torch() -> None:
    result = run_blocked("from engine.cli import build_parser; print(build_parser().format_help())")
    assert result.returncode == 0, result.stderr
    from engine.cli import COMMANDS
    for name, _, _ in COMMANDS:
        assert name in result.stdout


def test_import_contracts_hold() -> None:
    from pathlib import Path

    exe = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
