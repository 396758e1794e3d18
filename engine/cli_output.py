"""What both command lines (``soundscape-engine`` and ``soundscape``) share about their output (torch-free):
the package version for ``--version``, JSON that strict readers accept, and a quiet end when the reader
of a pipe goes away (``soundscape-engine atlas query ... | head``).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from typing import Any

from engine.files import json_safe

PACKAGE = "soundscape-mapper"
SIGPIPE_STATUS = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader closed the pipe


def package_version() -> str:
    """The installed distribution's version, else the version in the source tree (a plain checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        from engine import __version__

        return __version__


def json_line(value: Any) -> str:
    """``value`` as one line of strict JSON: NaN and infinities become null (``allow_nan=False`` then
    guarantees no ``NaN`` literal slips through)."""
    return json.dumps(json_safe(value), allow_nan=False)


def exit_quietly_on_broken_pipe(main: Callable[[], int]) -> int:
    """Run ``main`` and flush stdout; if the reader of stdout has gone (``| head``), return 141 without
    a traceback.

    Standard output is then pointed at the null device, so the interpreter's own flush at exit does not
    raise (and print "Exception ignored ... BrokenPipeError") a second time.
    """
    try:
        status = main()
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        if not _stdout_is_a_pipe():
            raise  # another pipe broke (a worker's, a subprocess's): not a reader that stopped reading
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (AttributeError, OSError, ValueError):  # stdout replaced by something without a descriptor
            pass
        return SIGPIPE_STATUS


def _stdout_is_a_pipe() -> bool:
    """Whether standard output is a pipe or socket (or, for tests, not a real file at all)."""
    try:
        mode = os.fstat(sys.stdout.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        return True
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
