"""``soundscape``: the desktop app's entry point."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def has_display() -> bool:
    """True when Qt can open a window here (a display, Wayland, or an offscreen platform asked for)."""
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc"):
        return True
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


NO_DISPLAY_MESSAGE = ("soundscape: no display found; run it under a virtual screen with "
                      "'xvfb-run -a soundscape', or render offscreen with "
                      "'QT_QPA_PLATFORM=offscreen soundscape --screenshot out.png'")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return 0
    from PySide6.QtWidgets import QApplication, QLabel

    qt_app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    label = QLabel("Soundscape Mapper\n\nThe map, listening and recording views are on their way.")
    label.setMinimumSize(480, 200)
    label.show()
    return qt_app.exec()


if __name__ == "__main__":
    sys.exit(main())
