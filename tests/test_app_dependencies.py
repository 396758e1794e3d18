"""Every package the app can import, directly or through the engine modules it uses, comes from the base
dependencies or the ``app`` extra in pyproject.toml (or from what those require), never from the
``engine`` extra (torch, matplotlib, onnx, ...).

Imports are read from the source with ``ast``, including the ones inside functions (the app and the
engine import onnxruntime or rasterio only when needed) and modules imported by name
(``importlib.import_module("sounddevice")``), and followed from ``app/`` into every engine module it
reaches. Distributions are looked up in this environment's installed metadata.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from tests.conftest import ROOT

FIRST_PARTY = ("app", "engine")
# Packages the engine modules the app reaches import only behind ``except ImportError`` (the feature is
# skipped or falls back without them); they come with the ``scale`` extra, not the app's install.
OPTIONAL = {
    "faiss": "approximate search over atlases of 200,000+ tiles; without it search stays exact",
    "distributed": "atlas builds on a Dask cluster (engine.atlas.distributed); the app builds in-process",
    "threadpoolctl": "BLAS threads of Dask workers (engine.atlas.distributed)",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def module_file(module: str) -> Path | None:
    """The source file of a first-party module (a package's ``__init__.py``), or None."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path, module: str) -> set[str]:
    """Every module named by an import statement of ``path``, anywhere in the file, absolute names."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and "import" in _called_name(node.func):
            names.add(node.args[0].value)  # importlib.import_module("sounddevice") and the like
    return names


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def app_reachable_imports() -> tuple[dict[str, set[str]], set[str]]:
    """Third-party top-level names imported by the app and the engine modules it reaches, with the files
    that import them; and the first-party modules visited."""
    todo = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for p in (ROOT / "app").rglob("*.py")]
    seen: set[str] = set()
    third_party: dict[str, set[str]] = {}
    while todo:
        module = todo.pop()
        path = module_file(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        # importing a module runs its packages' __init__ first
        todo.extend(".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1))
        for name in imports_of(path, module):
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                todo.append(name)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                third_party.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return third_party, seen


def allowed_distributions() -> set[str]:
    """The base and ``app`` requirements and, from the installed metadata, everything they require."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    todo = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["app"]]
    allowed: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonical(requirement.name)
        if name in allowed:
            continue
        allowed.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):  # not the optional extras' ones
                todo.append(sub)
    return allowed


def test_the_walk_reaches_the_engine_modules_the_app_uses() -> None:
    _, visited = app_reachable_imports()
    # app.services.project opens bundles and atlases, app.services.demo makes the demo world, the
    # recording panel runs the front-end: the walk must have followed those imports into the engine
    for module in ("engine.bundle.format", "engine.atlas", "engine.atlas.build", "engine.inference.encoders",
                   "engine.demo_world.generate", "engine.demo_world.worker", "engine.audio.front_end"):
        assert module in visited, module
    assert not any(m.startswith(("engine.train", "engine.shard_training", "engine.models")) for m in visited)


def test_every_package_the_app_imports_is_a_base_or_app_dependency() -> None:
    third_party, _ = app_reachable_imports()
    providers = metadata.packages_distributions()
    allowed = allowed_distributions()
    undeclared = {}
    scale = " ".join(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"]["scale"])
    for top, files in sorted(third_party.items()):
        if top in OPTIONAL:  # declared: in the scale extra, and the app works without it
            assert any(canonical(d) in canonical(scale) for d in providers.get(top, [top])), top
            continue
        dists = {canonical(d) for d in providers.get(top, [])}
        if not dists & allowed:
            undeclared[top] = (sorted(dists) or ["not installed"], sorted(files)[:3])
    assert not undeclared, f"imported by the app but not a base or app dependency: {undeclared}"
    # the packages the app is known to need are among those found (the walk is not vacuous)
    assert {"numpy", "PySide6", "pyqtgraph", "onnxruntime", "sounddevice", "rasterio", "soundfile", "soxr",
            "scipy", "PIL", "platformdirs"} <= set(third_party)


def test_the_engine_extra_is_not_allowed_for_the_app() -> None:
    # librosa is only the tests' reference for the front-end; as a base dependency it would bring numba
    # and LLVM into every app install
    allowed = allowed_distributions()
    assert not {"torch", "torchvision", "torchaudio", "matplotlib", "onnx", "safetensors", "tensorboard",
                "librosa"} & allowed
