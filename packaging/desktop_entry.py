"""Add the Linux desktop integration to a built bundle: the app's icon as PNGs (rendered from
resources/icons/soundscape.svg with Qt's SVG renderer) and SVG, the desktop entry, and the script that
installs both for the user.

    python packaging/desktop_entry.py dist/soundscape

Writes, beside the executable::

    share/icons/hicolor/<N>x<N>/apps/soundscape-mapper.png   (N in ICON_SIZES)
    share/icons/hicolor/scalable/apps/soundscape-mapper.svg
    share/applications/soundscape-mapper.desktop
    install-desktop-entry.sh
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "icons" / "soundscape.svg"
LINUX = Path(__file__).resolve().parent / "linux"
APP_ID = "soundscape-mapper"  # the icon's and the desktop entry's name (the app sets it as desktopFileName)
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_icons(svg: Path, out_dir: Path, sizes: tuple[int, ...] = ICON_SIZES) -> list[Path]:
    """Render ``svg`` as square PNGs with a transparent background into the hicolor layout.

    Args:
        svg: the SVG file.
        out_dir: the ``hicolor`` folder to write into.
        sizes: the sizes in pixels.
    Returns:
        The PNG files written.
    Raises:
        ValueError: the SVG cannot be read.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # QImage painting needs one
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg}: not a valid SVG file")
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = out_dir / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(path), "PNG"):
            raise OSError(f"{path}: could not write the icon")
        written.append(path)
    return written


def add_desktop_integration(bundle: Path) -> list[Path]:
    """Write the icons, the desktop entry and the install script into ``bundle``.

    Returns:
        The files written.
    """
    hicolor = bundle / "share" / "icons" / "hicolor"
    written = render_icons(SVG, hicolor)
    scalable = hicolor / "scalable" / "apps" / f"{APP_ID}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SVG, scalable)
    entry = bundle / "share" / "applications" / f"{APP_ID}.desktop"
    entry.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(LINUX / f"{APP_ID}.desktop", entry)
    script = bundle / "install-desktop-entry.sh"
    shutil.copyfile(LINUX / "install-desktop-entry.sh", script)
    script.chmod(0o755)
    return [*written, scalable, entry, script]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Add the icons and the desktop entry to a built bundle.")
    parser.add_argument("bundle", type=Path, help="the bundle folder (dist/soundscape)")
    args = parser.parse_args(argv)
    if not (args.bundle / "soundscape").is_file():
        print(f"error: {args.bundle}: no soundscape executable there; build the bundle first", file=sys.stderr)
        return 2
    files = add_desktop_integration(args.bundle)
    print(f"desktop integration: {len(files)} files (icons {', '.join(map(str, ICON_SIZES))} px, "
          f"{APP_ID}.desktop, install-desktop-entry.sh)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
