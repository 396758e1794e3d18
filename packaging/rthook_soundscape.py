"""Runtime hook of the desktop bundle: runs inside the frozen app before its first import.

- GDAL_DATA and PROJ_DATA point at the copies inside the bundle (rasterio/gdal_data, rasterio/proj_data),
  whatever the environment says: a PROJ_DATA left by another installation would make the bundled PROJ
  read a proj.db of another version and fail on every coordinate transform.
- PortAudio: sounddevice looks for ``libportaudio`` with ``ctypes.util.find_library``. The system's copy
  is used when there is one (it matches the system's ALSA, JACK or PipeWire set-up); otherwise the copy
  in ``portaudio/`` (with the JACK client library it links, loaded from there first). When neither
  loads, sounddevice raises OSError and the app disables record and play with the reason.
  ``SOUNDSCAPE_PORTAUDIO=system|bundled|none`` forces one choice (``none``: run without audio).
"""

import ctypes
import ctypes.util
import os
import sys


def _bundled(*parts):
    return os.path.join(sys._MEIPASS, *parts)


def _point_rasterio_at_bundled_data():
    for variable, folder in (("GDAL_DATA", "gdal_data"), ("PROJ_DATA", "proj_data")):
        path = _bundled("rasterio", folder)
        if os.path.isdir(path):
            os.environ[variable] = path
    os.environ.pop("PROJ_LIB", None)  # the name PROJ < 9.1 used; rasterio would prefer it


def _preload_portaudio_dependencies(folder):
    """Load the bundled JACK client (and what it links) so the bundled libportaudio finds them."""
    pending = sorted(f for f in os.listdir(folder) if ".so" in f and not f.startswith("libportaudio"))
    while pending:  # a library loads once the ones it links are loaded
        loaded = []
        for name in pending:
            try:
                ctypes.CDLL(os.path.join(folder, name), mode=ctypes.RTLD_GLOBAL)
                loaded.append(name)
            except OSError:
                pass
        if not loaded:
            return
        pending = [n for n in pending if n not in loaded]


def _choose_portaudio():
    choice = os.environ.get("SOUNDSCAPE_PORTAUDIO", "auto").strip().lower()
    system_find_library = ctypes.util.find_library
    folder = _bundled("portaudio")
    bundled = os.path.join(folder, "libportaudio.so.2")

    def find_library(name):
        if name != "portaudio":
            return system_find_library(name)
        if choice == "none":
            return None
        found = None if choice == "bundled" else system_find_library(name)
        if found is None and choice != "system" and os.path.isfile(bundled):
            _preload_portaudio_dependencies(folder)
            return bundled
        return found

    ctypes.util.find_library = find_library


_point_rasterio_at_bundled_data()
if sys.platform.startswith("linux"):
    _choose_portaudio()
