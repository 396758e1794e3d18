"""Run in a subprocess by test_real_audio.py (PortAudio must start after the test's PulseAudio server):
open an atlas, select a tile, press the first row's play button, wait until the clip has played, and
print JSON with the clip's path, whether the row showed Stop while it played, and the playhead positions
the Listen spectrogram showed (from the frames the output stream took)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(atlas: str, bundle: str, folder: str) -> int:
    import numpy as np
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.controllers import AppContext
    from app.launch import build_app

    app = QApplication([sys.argv[0]])
    ctx = AppContext(config_dir=Path(folder) / "cfg", data_dir=Path(folder) / "data", extra_bundles=[Path(bundle)])
    window, state, controller = build_app(ctx)
    window.show()
    controller.project.open_atlas(atlas, bundle)
    controller.runner.wait_idle(120)
    a = state.project.atlas
    i = int(np.argmin(np.abs(np.asarray(a.tiles.lon) - np.median(a.tiles.lon))))
    controller.project.select_at(float(a.tiles.lon[i]), float(a.tiles.lat[i]))
    controller.runner.wait_idle(60)
    button = window.listen.best.buttons[0]
    path = str(window.listen.best.matches[0].path)
    report = {"path": path, "enabled": button.isEnabled(), "tooltip": button.toolTip(), "showed_stop": False,
              "playheads": [], "clip": str(state.selection.clip.path) if state.selection.clip else None}
    print("PLAYING", flush=True)
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    deadline = time.monotonic() + 60
    started = False
    while time.monotonic() < deadline:
        app.processEvents()
        if state.audio.playing == path:
            started = True
            report["showed_stop"] = report["showed_stop"] or button.text() == "■"
            head = window.listen.spectrogram.playhead_seconds
            if head is not None and (not report["playheads"] or head != report["playheads"][-1]):
                report["playheads"].append(head)
        if started and state.audio.playing is None:
            break
        time.sleep(0.01)
    report["finished"] = started and state.audio.playing is None
    report["button_after"] = window.listen.best.buttons[0].text()
    window.close()
    app.processEvents()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
