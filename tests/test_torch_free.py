"""The app and the engine's portable modules import with torch made unimportable.

The modules are the source modules of pyproject.toml's import contracts that forbid torch (one list: add a
new torch-free module there), each package with every module below it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib

from tests.conftest import ROOT

TORCH = ("torch", "torchvision", "torchaudio")


def torch_free_roots() -> list[str]:
    """The source modules of pyproject.toml's import contracts that forbid torch (the engine's portable
    modules, and the app): the one list of torch-free modules."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    return [m for c in contracts if set(TORCH) <= set(c.get("forbidden_modules", [])) for m in c["source_modules"]]


def with_descendants(module: str) -> list[str]:
    """``module`` and, for a package, every module below it (found on disk; import-linter checks those too)."""
    path = ROOT.joinpath(*module.split("."))
    if not path.is_dir():
        return [module]
    return sorted(".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for f in path.rglob("*.py"))


PORTABLE_MODULES = [m for root in torch_free_roots() for m in with_descendants(root)]

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


def test_the_list_comes_from_the_contracts_and_covers_both_sides() -> None:
    roots = torch_free_roots()
    assert "app" in roots and "engine.config" in roots and "engine.bundle" in roots
    assert "engine.config.run" in PORTABLE_MODULES and "app.widgets.main_window" in PORTABLE_MODULES


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
