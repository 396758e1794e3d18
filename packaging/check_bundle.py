"""Check a built desktop bundle: no PyTorch inside (the build fails otherwise), and what its size is made of.

    python packaging/check_bundle.py dist/soundscape

Prints the total size, the largest folders and libraries, and the newest glibc symbol version any
library needs (the oldest Linux the bundle can run on). Exit status 1 when a PyTorch file or module is
in the bundle.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bundle_rules import TORCH_PACKAGES  # noqa: E402

# Files of PyTorch's packages and native libraries (libtorch_cpu.so, libc10.so, ...) and of the CUDA
# wheels it pulls in.
TORCH_FILE = re.compile(r"^(torch|torchvision|torchaudio|functorch|triton|nvidia)$|^lib(torch|c10|caffe2|shm)[._]")


def torch_files(bundle: Path) -> list[Path]:
    """Files and folders of the bundle whose names are PyTorch's."""
    return sorted(p for p in bundle.rglob("*") if TORCH_FILE.search(p.name))


def torch_modules(executable: Path) -> list[str]:
    """Python modules of PyTorch's packages in the bundle's module archive (PYZ)."""
    from PyInstaller.archive.readers import CArchiveReader

    archive = CArchiveReader(str(executable))
    modules = list(archive.toc)
    for name in list(archive.toc):
        if name.endswith(".pyz"):
            modules += list(archive.open_embedded_archive(name).toc)
    return sorted(m for m in modules if m.split(".")[0] in TORCH_PACKAGES)


def file_sizes(bundle: Path) -> dict[Path, int]:
    """Every regular file's size in bytes (links are not counted twice)."""
    return {p: p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()}


def size_by_part(bundle: Path, sizes: dict[Path, int]) -> list[tuple[str, int]]:
    """Sizes grouped by what they belong to: each folder directly inside ``_internal`` (a package) and
    each library at its top, largest first."""
    internal = bundle / "_internal"
    parts: dict[str, int] = defaultdict(int)
    for path, size in sizes.items():
        if internal in path.parents:
            key = path.relative_to(internal).parts[0]
        elif path == bundle / "soundscape":
            key = "soundscape (the executable, with the app's Python modules)"
        else:
            key = f"{path.relative_to(bundle).parts[0]} (beside the executable)"
        parts[key] += size
    return sorted(parts.items(), key=lambda kv: -kv[1])


def newest_glibc(bundle: Path) -> tuple[str, Path] | None:
    """The newest GLIBC_x.y symbol version an ELF file of the bundle needs, and that file (None without
    binutils' readelf)."""
    readelf = shutil.which("readelf")
    if readelf is None:
        return None
    newest: tuple[tuple[int, ...], Path] | None = None
    for path in sorted(bundle.rglob("*")):
        if not path.is_file() or path.is_symlink() or not _is_elf(path):
            continue
        out = subprocess.run([readelf, "-V", "-W", str(path)], capture_output=True, text=True).stdout
        for text in re.findall(r"Name: GLIBC_([\d.]+)", out):
            version = tuple(int(x) for x in text.split("."))
            if newest is None or version > newest[0]:
                newest = (version, path)
    return None if newest is None else ("GLIBC_" + ".".join(map(str, newest[0])), newest[1])


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def megabytes(n: int) -> str:
    return f"{n / 1e6:7.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="the bundle folder (dist/soundscape)")
    parser.add_argument("--top", type=int, default=15, help="how many parts and files to list")
    args = parser.parse_args(argv)
    bundle: Path = args.bundle
    executable = bundle / "soundscape"
    if not executable.is_file():
        print(f"error: {executable}: not found; build the bundle first (make package)", file=sys.stderr)
        return 2

    found = [str(p.relative_to(bundle)) for p in torch_files(bundle)] + torch_modules(executable)
    if found:
        print(f"error: {bundle}: PyTorch is inside the bundle ({len(found)} entries, e.g. {', '.join(found[:5])}); "
              "add what pulls it in to EXCLUDED_MODULES in packaging/bundle_rules.py", file=sys.stderr)
        return 1
    print(f"{bundle}: no PyTorch files or modules inside")

    sizes = file_sizes(bundle)
    total = sum(sizes.values())
    print(f"size: {megabytes(total).strip()} ({total / 2**20:.0f} MiB) in {len(sizes)} files")
    print("largest parts:")
    for name, size in size_by_part(bundle, sizes)[:args.top]:
        print(f"  {megabytes(size)}  {name}")
    print("largest files:")
    for path, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"  {megabytes(size)}  {path.relative_to(bundle)}")
    glibc = newest_glibc(bundle)
    if glibc:
        print(f"needs glibc: {glibc[0]} or newer (for {glibc[1].relative_to(bundle)}, among others)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
