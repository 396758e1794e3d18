"""The desktop bundle's entry point (PyInstaller's script): the ``soundscape`` command.

``app.main.main`` calls ``multiprocessing.freeze_support()`` first, so the demo world's ``spawn``
workers, which start this executable again, become workers instead of opening a second window.
"""

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main())
