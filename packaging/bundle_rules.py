"""What goes into the desktop bundle and what stays out (used by soundscape.spec and check_bundle.py).

The app needs Qt's widgets, onnxruntime, rasterio/GDAL, numpy/scipy, libsndfile and PortAudio. It never
needs PyTorch or the engine's training stack, Qt Quick/QML, or most of Qt's plugins.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

# Python packages the bundle must never contain: the engine's training stack (the `engine` extra and what
# it pulls in) and development tools. PyInstaller would follow their imports from modules it does not
# need (the engine's training code, optional imports in other packages).
TORCH_PACKAGES = ("torch", "torchvision", "torchaudio")
EXCLUDED_MODULES = [
    *TORCH_PACKAGES, "functorch", "triton", "nvidia", "onnx", "onnxscript", "tensorboard", "safetensors",
    "matplotlib", "librosa", "numba", "llvmlite", "sklearn", "pandas", "sympy", "networkx", "jinja2",
    "IPython", "jupyter", "notebook", "pytest", "pytestqt", "ruff", "importlinter", "pyproj", "tkinter",
    "_tkinter", "PyInstaller", "readline",
    # optional imports: pyqtgraph's CUDA (cupy) image path, numpy.f2py's encoding detection
    "cuda", "cupy", "charset_normalizer",
    # Pillow's AVIF and Tk support (the app reads and writes JPEG and PNG)
    "PIL._avif", "PIL.AvifImagePlugin", "PIL.ImageTk", "PIL._imagingtk",
    # build tools (cffi imports them only to compile; sounddevice's interface is already compiled)
    "setuptools", "pkg_resources", "distutils", "_distutils_hack",
    # TLS: the app opens no network connection (hashlib keeps its built-in SHA-256 without OpenSSL)
    "ssl", "_ssl", "_hashlib",
    # Qt modules the app does not use (pyqtgraph imports some optionally; it needs QtOpenGL and
    # QtOpenGLWidgets, which stay)
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuickControls2",
    "PySide6.QtQuickTest", "PySide6.QtNetwork", "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtDesigner",
    "PySide6.QtHelp", "PySide6.QtUiTools", "PySide6.QtXml", "PySide6.QtConcurrent", "PySide6.QtDBus",
    "PySide6.QtPrintSupport",
    "PyQt5", "PyQt6", "PySide2",
]

# Qt plugin folders the window needs on Linux (X11 and Wayland, offscreen for --screenshot); the others
# (EGL full-screen devices, evdev input, SQL drivers, TLS, network information, ...) are left out.
QT_PLUGIN_FOLDERS_KEPT = {
    "platforms", "platformthemes", "platforminputcontexts", "imageformats", "iconengines",
    "xcbglintegrations", "wayland-decoration-client", "wayland-graphics-integration-client",
    "wayland-shell-integration", "styles",
}
QT_PLUGINS_KEPT = {
    "platforms": {"libqxcb.so", "libqwayland.so", "libqoffscreen.so", "libqminimal.so"},
    "imageformats": {"libqsvg.so", "libqjpeg.so", "libqico.so"},
    # the GTK theme would bring cairo, pango and GDK into the bundle to load the system's GTK against them
    "platformthemes": {"libqxdgdesktopportal.so"},
    "wayland-graphics-integration-client": {"libqt-plugin-wayland-egl.so"},
    "wayland-shell-integration": {"libxdg-shell.so"},
}

# The system's ALSA library stays the system's: its plugins and configuration (PulseAudio, PipeWire) are
# loaded by it at run time and must match its version.
SYSTEM_ONLY_LIBRARIES = ("libasound.so",)
# Libraries only PortAudio links (its JACK client); kept beside it in portaudio/, off the library path.
PORTAUDIO_PRIVATE_PREFIXES = ("libportaudio.so", "libjack.so", "libdb-")


def _qt_plugin(dest: str) -> tuple[str, str] | None:
    parts = PurePosixPath(dest).parts
    if "plugins" in parts and parts[:2] == ("PySide6", "Qt"):
        i = parts.index("plugins")
        if len(parts) > i + 2:
            return parts[i + 1], parts[-1]
    return None


def keep_binary(dest: str, src: str) -> bool:
    """Whether a collected library goes into the bundle.

    Args:
        dest: its path inside the bundle (relative to ``_internal``).
        src: where it was collected from.
    """
    name = PurePosixPath(dest).name
    if any(name.startswith(prefix) for prefix in SYSTEM_ONLY_LIBRARIES):
        return False
    if any(part in TORCH_PACKAGES for part in PurePosixPath(dest).parts):
        return False
    plugin = _qt_plugin(dest)
    if plugin is not None:
        folder, library = plugin
        if folder not in QT_PLUGIN_FOLDERS_KEPT:
            return False
        if folder in QT_PLUGINS_KEPT and library not in QT_PLUGINS_KEPT[folder]:
            return False
    return True


def is_dependency_library(dest: str) -> bool:
    """Whether a collected file is a shared library that is there only because another one links it: the
    ones PyInstaller puts at the top, Qt's own libraries and those bundled in wheels' ``*.libs`` folders.
    (Python's own library is loaded by the bootloader; extension modules, plugins and libraries loaded
    with ctypes or cffi are never candidates.)"""
    path = PurePosixPath(dest)
    parent = str(path.parent)
    if not path.name.startswith("lib") or ".so" not in path.name or path.name.startswith("libpython"):
        return False
    return parent in (".", "PySide6/Qt/lib") or parent.endswith(".libs")


def prune_unlinked_libraries(binaries: list[tuple[str, str, str]],
                             imports: Callable[[str], Iterable[str]]) -> list[tuple[str, str, str]]:
    """Drop the dependency libraries no kept binary links any more (those of the plugins left out).

    Args:
        binaries: PyInstaller's TOC entries ``(dest, src, kind)`` after :func:`keep_binary`.
        imports: the names of the libraries a binary links, directly or not (PyInstaller's ``ldd``).
    Returns:
        The entries to keep.
    """
    needed: set[str] = set()
    for dest, src, _ in binaries:
        if not is_dependency_library(dest):
            needed.update(PurePosixPath(name).name for name in imports(src))
    return [entry for entry in binaries
            if not is_dependency_library(entry[0]) or PurePosixPath(entry[0]).name in needed]


def drop_dangling_links(entries: list[tuple[str, str, str]], present: set[str]) -> list[tuple[str, str, str]]:
    """Drop PyInstaller's links (``(dest, target inside the bundle, "SYMLINK")``) whose target is gone."""
    return [entry for entry in entries if entry[2] != "SYMLINK" or entry[1] in present]


def keep_data(dest: str) -> bool:
    """Whether a collected data file goes into the bundle: Qt's translations stay out (the app is in
    English; Qt's own strings then show in English too)."""
    parts = PurePosixPath(dest).parts
    return not (parts[:3] == ("PySide6", "Qt", "translations"))


def portaudio_destination(dest: str, portaudio_names: set[str]) -> str:
    """Where a library goes: PortAudio and the libraries only it links move into ``portaudio/``."""
    name = PurePosixPath(dest).name
    if portaudio_names and (name in portaudio_names or name.startswith(PORTAUDIO_PRIVATE_PREFIXES)):
        return f"portaudio/{name}"
    return dest


def has_debug_info(path: Path, readelf: str) -> bool:
    """Whether an ELF file carries DWARF debug sections (``.debug_*``)."""
    out = subprocess.run([readelf, "-S", "-W", str(path)], capture_output=True, text=True).stdout
    return ".debug_" in out


def strip_debug_info(internal: Path) -> list[Path]:
    """Remove the debug information (DWARF sections only; symbols stay) from the bundle's libraries.

    Python's own library and extension modules, rasterio's Cython modules and a few wheel libraries come
    with it (about 60 MB together); the program never reads it.

    Args:
        internal: the bundle's ``_internal`` folder.
    Returns:
        The files stripped (none when binutils' ``strip`` and ``readelf`` are not installed).
    """
    strip, readelf = shutil.which("strip"), shutil.which("readelf")
    if strip is None or readelf is None:
        return []
    stripped = []
    for path in sorted(internal.rglob("*.so*")):
        if path.is_file() and not path.is_symlink() and has_debug_info(path, readelf):
            subprocess.run([strip, "--strip-debug", str(path)], check=True)
            stripped.append(path)
    return stripped
