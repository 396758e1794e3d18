"""The bundle check (packaging/check_bundle.py): PyTorch's files are found, the size is summed by part."""

from __future__ import annotations

from pathlib import Path

import check_bundle


def make_tree(root: Path, files: dict[str, int]) -> None:
    for name, size in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)


def test_torch_files_are_found_and_lookalikes_are_not(tmp_path: Path) -> None:
    make_tree(tmp_path, {
        "soundscape": 10,
        "_internal/torch/lib/libtorch_cpu.so": 1,
        "_internal/libc10.so": 1,
        "_internal/nvidia/cublas/lib/libcublas.so.12": 1,
        "_internal/torchaudio/_extension.so": 1,
        "_internal/libshm-emulation-server.so": 1,   # a Qt Wayland plugin, not torch's libshm
        "_internal/PySide6/Qt/lib/libQt6Core.so.6": 1,
        "_internal/engine/torch_free_notes.txt": 1,
        "_internal/libtorchless.so": 1,
    })
    found = {str(p.relative_to(tmp_path)) for p in check_bundle.torch_files(tmp_path)}
    assert found == {"_internal/torch", "_internal/torch/lib/libtorch_cpu.so", "_internal/libc10.so",
                     "_internal/nvidia", "_internal/torchaudio"}


def test_sizes_are_summed_by_package_and_top_library(tmp_path: Path) -> None:
    make_tree(tmp_path, {
        "soundscape": 1000,
        "share/icons/hicolor/16x16/apps/x.png": 7,
        "_internal/PySide6/Qt/lib/libQt6Core.so.6": 300,
        "_internal/PySide6/QtCore.abi3.so": 200,
        "_internal/libpython3.11.so.1.0": 50,
        "_internal/rasterio/proj_data/proj.db": 40,
    })
    (tmp_path / "_internal" / "libQt6Core.so.6").symlink_to("PySide6/Qt/lib/libQt6Core.so.6")
    sizes = check_bundle.file_sizes(tmp_path)
    assert sum(sizes.values()) == 1597  # the link is not counted
    parts = dict(check_bundle.size_by_part(tmp_path, sizes))
    assert parts == {"PySide6": 500, "libpython3.11.so.1.0": 50, "rasterio": 40,
                     "soundscape (the executable, with the app's Python modules)": 1000,
                     "share (beside the executable)": 7}


def test_a_missing_bundle_is_refused(tmp_path: Path, capsys) -> None:
    assert check_bundle.main([str(tmp_path / "nowhere")]) == 2
    assert "build the bundle first (make package)" in capsys.readouterr().err
