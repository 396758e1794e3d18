"""What the desktop bundle keeps, moves and prunes (packaging/bundle_rules.py), on PyInstaller-style
table-of-contents entries ``(dest, src, kind)``."""

from __future__ import annotations

import bundle_rules as rules


def test_torch_and_the_engine_extra_are_excluded_modules() -> None:
    for name in ("torch", "torchvision", "torchaudio", "onnx", "matplotlib", "safetensors", "tensorboard"):
        assert name in rules.EXCLUDED_MODULES
    # pyqtgraph imports these at start: excluding them would break the app
    assert "PySide6.QtOpenGL" not in rules.EXCLUDED_MODULES and "PySide6.QtOpenGLWidgets" not in rules.EXCLUDED_MODULES


def test_qt_plugins_kept_and_left_out() -> None:
    plugin = "PySide6/Qt/plugins/{}/{}".format
    kept = [plugin("platforms", "libqxcb.so"), plugin("platforms", "libqwayland.so"),
            plugin("platforms", "libqoffscreen.so"), plugin("imageformats", "libqsvg.so"),
            plugin("iconengines", "libqsvgicon.so"), plugin("platformthemes", "libqxdgdesktopportal.so"),
            plugin("wayland-shell-integration", "libxdg-shell.so")]
    dropped = [plugin("platforms", "libqeglfs.so"), plugin("platforms", "libqvnc.so"),
               plugin("imageformats", "libqtiff.so"), plugin("platformthemes", "libqgtk3.so"),
               plugin("sqldrivers", "libqsqlite.so"), plugin("egldeviceintegrations", "libqeglfs-kms-integration.so"),
               plugin("generic", "libqevdevmouseplugin.so"), plugin("wayland-shell-integration", "libivi-shell.so")]
    for dest in kept:
        assert rules.keep_binary(dest, "/x/" + dest), dest
    for dest in dropped:
        assert not rules.keep_binary(dest, "/x/" + dest), dest


def test_alsa_and_torch_libraries_stay_out_other_libraries_stay_in() -> None:
    assert not rules.keep_binary("libasound.so.2", "/lib/x86_64-linux-gnu/libasound.so.2")
    assert not rules.keep_binary("torch/lib/libtorch_cpu.so", "/venv/torch/lib/libtorch_cpu.so")
    assert rules.keep_binary("libQt6Core.so.6", "/venv/PySide6/Qt/lib/libQt6Core.so.6")
    assert rules.keep_binary("rasterio.libs/libgdal-c8c9c467.so.36", "/venv/rasterio.libs/libgdal-c8c9c467.so.36")


def test_qt_translations_are_left_out() -> None:
    assert not rules.keep_data("PySide6/Qt/translations/qtbase_de.qm")
    assert rules.keep_data("resources/style.qss")
    assert rules.keep_data("rasterio/proj_data/proj.db")


def test_portaudio_and_its_jack_client_move_into_their_folder() -> None:
    names = {"libportaudio.so.2.0.0"}
    assert rules.portaudio_destination("portaudio/libportaudio.so.2.0.0", names) == "portaudio/libportaudio.so.2.0.0"
    assert rules.portaudio_destination("libportaudio.so.2", names) == "portaudio/libportaudio.so.2"
    assert rules.portaudio_destination("libjack.so.0", names) == "portaudio/libjack.so.0"
    assert rules.portaudio_destination("libdb-5.3.so", names) == "portaudio/libdb-5.3.so"
    assert rules.portaudio_destination("libstdc++.so.6", names) == "libstdc++.so.6"  # shared with Qt: stays
    assert rules.portaudio_destination("libjack.so.0", set()) == "libjack.so.0"  # no PortAudio was bundled


def test_libraries_nothing_links_any_more_are_pruned() -> None:
    toc = [
        ("app_ext.cpython-311-x86_64-linux-gnu.so", "/v/app_ext.so", "EXTENSION"),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "/v/libqxcb.so", "BINARY"),
        ("liba.so.1", "/v/liba.so.1", "BINARY"),            # linked by the extension
        ("libb.so.2", "/v/libb.so.2", "BINARY"),            # linked by liba (ldd lists it for the extension too)
        ("PySide6/Qt/lib/libQt6XcbQpa.so.6", "/v/libQt6XcbQpa.so.6", "BINARY"),  # linked by the plugin
        ("PySide6/Qt/lib/libQt6Network.so.6", "/v/libQt6Network.so.6", "BINARY"),  # linked by no one
        ("libcairo.so.2", "/v/libcairo.so.2", "BINARY"),    # was linked by a plugin left out
        ("pillow.libs/libavif-1.so.16", "/v/libavif.so.16", "BINARY"),  # a wheel's library, unused
        ("libpython3.11.so.1.0", "/v/libpython3.11.so.1.0", "BINARY"),  # loaded by the bootloader
        ("portaudio/libportaudio.so.2", "/lib/libportaudio.so.2", "BINARY"),  # loaded with cffi
    ]
    links = {"/v/app_ext.so": ["liba.so.1", "libb.so.2", "libc.so.6"], "/v/libqxcb.so": ["libQt6XcbQpa.so.6"],
             "/lib/libportaudio.so.2": ["libasound.so.2"]}
    kept = rules.prune_unlinked_libraries(toc, lambda src: links.get(src, []))
    assert [dest for dest, _, _ in kept] == [
        "app_ext.cpython-311-x86_64-linux-gnu.so", "PySide6/Qt/plugins/platforms/libqxcb.so", "liba.so.1",
        "libb.so.2", "PySide6/Qt/lib/libQt6XcbQpa.so.6", "libpython3.11.so.1.0", "portaudio/libportaudio.so.2"]


def test_links_to_pruned_libraries_are_dropped() -> None:
    entries = [("libQt6Core.so.6", "PySide6/Qt/lib/libQt6Core.so.6", "SYMLINK"),
               ("libQt6Network.so.6", "PySide6/Qt/lib/libQt6Network.so.6", "SYMLINK"),
               ("resources/style.qss", "/src/resources/style.qss", "DATA")]
    present = {"PySide6/Qt/lib/libQt6Core.so.6", "resources/style.qss"}
    assert rules.drop_dangling_links(entries, present) == [entries[0], entries[2]]
