"""Measure what `make run` and `make test` install: time and size of a fresh virtual environment per
extra set (prints figures; never pass/fail).

    python bench/install_footprint.py                 # app, then engine+app+dev, each in a fresh venv
    python bench/install_footprint.py --sets app      # only the app-only set

Each set is installed the way the Makefile does it (``pip install -q -e ".[<extras>]"`` from a copy of the
checkout, in a new venv under a temporary folder that is deleted afterwards). Packages come from whatever
pip is configured with: its cache, a local wheel store, the index. Run it twice to see the cached figure
(the first run fills pip's cache). Printed per set: seconds to install, the venv's size, the largest
packages, and whether torch is importable.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "app", "engine", "resources")
SETS = {"app": "app", "engine": "engine", "full": "engine,app,dev"}


def folder_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def largest_packages(site: Path, n: int = 6) -> list[tuple[str, int]]:
    sizes = [(p.name, folder_bytes(p)) for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info")]
    return sorted(sizes, key=lambda s: -s[1])[:n]


def measure(extras: str, workdir: Path) -> dict[str, object]:
    source = workdir / "source"
    source.mkdir()
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, source / name)
    venv = workdir / ".venv"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e",
                    f".[{extras}]"], cwd=source, check=True)
    seconds = time.perf_counter() - start
    site = next((venv / "lib").glob("python3*/site-packages"))
    has_torch = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('torch') is not None)"],
                               capture_output=True, text=True, check=True).stdout.strip() == "True"
    return {"extras": extras, "seconds": round(seconds, 1), "venv_mb": round(folder_bytes(venv) / 1e6),
            "torch": has_torch, "largest_mb": {k: round(v / 1e6) for k, v in largest_packages(site)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=sorted(SETS), default=["app", "full"])
    args = parser.parse_args(argv)
    for name in args.sets:
        with tempfile.TemporaryDirectory(prefix=f"install-{name}-") as tmp:
            result = measure(SETS[name], Path(tmp))
        print(json.dumps({"set": name, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
