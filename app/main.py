"""``soundscape``: the desktop app's entry point.

``main()`` builds the state, the services and the window and passes them down (no globals). With
``--screenshot`` it renders the window offscreen in the state the other options describe and exits.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.cli_output import exit_quietly_on_broken_pipe, package_version


def has_display() -> bool:
    """True when Qt can open a window here (a display, Wayland, or an offscreen platform asked for)."""
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc"):
        return True
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _invoked_as(argv0: str) -> str:
    """``soundscape`` when started from PATH, else the path it was started by (relative when below here)."""
    if os.sep not in argv0 or not argv0.endswith("soundscape"):
        return "soundscape"
    rel = os.path.relpath(argv0)
    return shlex.quote(rel if not rel.startswith("..") else os.path.abspath(argv0))


def no_display_message(program: str = "soundscape") -> str:
    """The one line printed instead of a Qt abort when there is no display; ``program`` is how the user
    started the app (e.g. ``.venv/bin/soundscape`` under ``make run``), so the commands can be pasted."""
    return (f"soundscape: no display found; run it under a virtual screen with 'xvfb-run -a {program}', "
            f"or render offscreen with 'QT_QPA_PLATFORM=offscreen {program} --screenshot out.png'")


def _lonlat(text: str) -> tuple[float, float]:
    try:
        lon, lat = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LON,LAT (e.g. 12.5,41.9)") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise argparse.ArgumentTypeError(f"{text!r}: longitude must be in [-180, 180] and latitude in [-90, 90]")
    return lon, lat


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (e.g. 1440x900)") from None
    if not (320 <= w <= 8192 and 240 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"{text!r}: the size must be between 320x240 and 8192x8192")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundscape",
        description="Soundscape Mapper: see and hear predicted soundscapes on aerial imagery, and find the "
                    "places that sound like a recording.")
    parser.add_argument("--atlas", type=Path, help="atlas folder to open (default: the last one, or the demo)")
    parser.add_argument("--bundle", type=Path, help="model bundle folder (default: the one the atlas was built with)")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png",
                        help="render the window offscreen in the state given by the other options, save it, exit")
    parser.add_argument("--size", type=_size, default=None, metavar="WxH",
                        help="window size for --screenshot (default 1440x900)")
    parser.add_argument("--select-lonlat", type=_lonlat, metavar="LON,LAT", help="select the tile at LON,LAT")
    query = parser.add_mutually_exclusive_group()
    query.add_argument("--query-audio", type=Path, metavar="FILE", help="search the map with an audio file")
    query.add_argument("--record-seconds", type=float, metavar="N",
                       help="record N seconds from the default input device and search with it")
    parser.add_argument("--print-matches", action="store_true",
                        help="print the top tiles of the sound query as JSON (tile id, lon, lat, score)")
    parser.add_argument("--layer", metavar="NAME", help="the map layer to show: imagery, similarity or an index "
                        "(ACI, NDSI, biophony_share, ...)")
    parser.add_argument("--tab", choices=["listen", "search", "train"], help="the tab shown in the screenshot")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for background work (headless)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    return parser


def _join_negative_values(argv: list[str]) -> list[str]:
    """Let ``--select-lonlat -77.8,24.5`` work: argparse would take the value for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--select-lonlat" and i + 1 < len(argv) and argv[i + 1][:2].replace(".", "").lstrip("-")[:1].isdigit():
            out.append(f"--select-lonlat={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; returns the exit status (0 ok, 1 failure in headless mode, 2 bad options)."""
    # In the desktop bundle the demo world's `spawn` workers start this executable again: this turns
    # such a start into the worker it should be (a no-op when not frozen). It must run before parsing.
    multiprocessing.freeze_support()
    # --print-matches piped into `head` ends quietly (status 141) instead of in a BrokenPipeError.
    return exit_quietly_on_broken_pipe(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    headless = args.screenshot is not None
    if args.print_matches and not (args.query_audio or args.record_seconds):
        parser.error("--print-matches needs --query-audio or --record-seconds")
    if headless and "QT_QPA_PLATFORM" not in os.environ and not has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if not has_display():
        print(no_display_message(_invoked_as(sys.argv[0])), file=sys.stderr)
        return 0
    if args.record_seconds is not None and not args.record_seconds > 0:
        parser.error("--record-seconds must be positive")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from app.launch import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
