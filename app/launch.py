"""Building the app (state, services, controller, window) and running it, interactively or headless."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from app.controllers import AppContext, AppController
from app.services.audio_io import AudioBackend
from app.services.project import resources_dir
from app.services.settings import data_dir, load_settings
from app.state import AppState

log = logging.getLogger(__name__)


def build_app(context: AppContext, backend: AudioBackend | None = None) -> tuple[Any, AppState, AppController]:
    """Create the state, task runner, controller and main window (a QApplication must exist).

    Returns:
        (MainWindow, AppState, AppController).
    """
    from PySide6.QtCore import qInstallMessageHandler

    from app.widgets.main_window import MainWindow
    from app.workers import TaskRunner

    qInstallMessageHandler(_qt_message)
    state = AppState()
    runner = TaskRunner(state.tasks)
    settings = load_settings(context.config_dir)
    controller = AppController(state, runner, backend or AudioBackend.load(), settings, context)
    window = MainWindow(state, controller)
    runner.setParent(window)
    return window, state, controller


def _qt_message(mode: Any, context: Any, message: str) -> None:
    """Qt's own messages go to the log; the offscreen platform's notes about window hints are noise."""
    if "propagateSizeHints" in message:
        return
    logging.getLogger("qt").debug("%s", message)


def _qt_app(argv0: str) -> Any:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([argv0])
    app.setApplicationName("Soundscape Mapper")
    app.setOrganizationName("soundscape-mapper")
    app.setDesktopFileName("soundscape-mapper")  # Wayland: the desktop entry (and icon) of the window
    style = resources_dir() / "style.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    return app


def run_app(args: argparse.Namespace) -> int:
    """Start the app with the parsed command-line options."""
    qt_app = _qt_app(sys.argv[0])
    context = AppContext(config_dir=None, data_dir=data_dir(), save_settings=args.screenshot is None)
    window, state, controller = build_app(context)
    if args.size is not None or args.screenshot is not None:
        window.resize(*(args.size or (1440, 900)))
    window.show()
    controller.project.launch(args.atlas, args.bundle)
    if args.screenshot is None:
        if args.select_lonlat or args.query_audio or args.record_seconds or getattr(args, "layer", None):
            def once() -> None:  # the options apply to the first atlas that opens
                state.project.changed.disconnect(once)
                _apply_options(window, controller, args, headless=False)
            state.project.changed.connect(once)
        return qt_app.exec()
    try:
        return _headless(window, state, controller, args)
    finally:
        window.close()
        window.deleteLater()
        qt_app.processEvents()


def _wait(controller: AppController, timeout_s: float) -> None:
    if not controller.runner.wait_idle(timeout_s):
        raise TimeoutError(f"background work did not finish within {timeout_s:.0f} s; raise --timeout")


def _apply_options(window: Any, controller: AppController, args: argparse.Namespace, headless: bool) -> None:
    """Select a tile and run a sound query as the options ask (after the atlas opened)."""
    if headless:
        _wait(controller, args.timeout)
    if getattr(args, "layer", None):
        controller.layers.choose(args.layer)
        if headless:
            _wait(controller, args.timeout)
    if args.select_lonlat:
        lon, lat = args.select_lonlat
        if not controller.project.select_at(lon, lat):
            controller.error(f"--select-lonlat {lon},{lat}: no tile of the atlas is there; choose a point on the map")
        else:
            window.map.centre_on(lon, lat)
    if args.query_audio:
        window.open_audio_file(args.query_audio)
    elif args.record_seconds:
        window.search.max_seconds.setValue(float(args.record_seconds))
        window.start_recording()
        if controller.audio.recorder is not None:
            print(f"recording {args.record_seconds:g} s from {controller.audio.recorder.device.name}",
                  file=sys.stderr, flush=True)


def _headless(window: Any, state: AppState, controller: AppController, args: argparse.Namespace) -> int:
    from PySide6.QtWidgets import QApplication

    start = time.monotonic()
    _wait(controller, args.timeout)
    if state.project.atlas is None:
        message = state.last_message.text if state.last_message else "no atlas could be opened"
        print(f"error: {message}", file=sys.stderr)
        window.grab().save(str(args.screenshot))
        return 1
    _apply_options(window, controller, args, headless=True)
    if args.record_seconds:
        if controller.audio.recorder is None:
            message = state.last_message.text if state.last_message else "recording failed"
            print(f"error: {message}", file=sys.stderr)
            return 1
        while controller.audio.recorder is not None and time.monotonic() - start < args.timeout:
            QApplication.processEvents()
            time.sleep(0.01)
    _wait(controller, args.timeout)
    if args.tab:
        window.tabs.setCurrentIndex({"listen": 0, "search": 1, "train": 2}[args.tab])
    for _ in range(5):  # let the range change, the tile detail timer and repaints settle
        QApplication.processEvents()
        time.sleep(0.06)
    window.map.settle(max(1.0, args.timeout - (time.monotonic() - start)))  # overviews and tile images drawn
    QApplication.processEvents()
    out = Path(args.screenshot)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out)):
        print(f"error: {out}: could not write the image; check the folder and the extension (.png)", file=sys.stderr)
        return 1
    failed = state.last_message is not None and state.last_message.level == "error"
    if failed:
        print(f"error: {state.last_message.text}", file=sys.stderr)
    if args.print_matches:
        result = state.query.result
        if result is None:
            return 1
        from engine.cli_output import json_line

        print(json_line([{"tile_id": int(m.id), "lon": float(m.lon), "lat": float(m.lat),
                           "score": float(m.score)} for m in result.top]))
    return 1 if failed else 0
