"""A guard against a reference-count bug in PySide6 6.12 on Python 3.11.

``Signal.emit()`` returns ``True`` without taking a new reference to it, so every emit whose result is
dropped takes one reference away from the ``True`` object. pyqtgraph emits several signals per pan or
zoom step, so after a few thousand interactions ``True``'s count reaches zero and CPython aborts with
"bool_dealloc: deallocating True or False" (measured: -4 per ``ViewBox.translateBy``; it also crashed
the app at exit). Python 3.12 made ``True`` and ``False`` immortal, which hides the bug there.

The guard gives both objects a reference count so large that it cannot run out; they are static
singletons that are never freed anyway, so nothing else changes.
"""

from __future__ import annotations

import sys

_HEADROOM = 1 << 40  # a trillion emits


def protect_bool_refcounts() -> bool:
    """Apply the guard once on CPython < 3.12. Returns True when it changed anything."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if sys.getrefcount(True) > _HEADROOM // 2:
        return False  # already applied
    import ctypes

    for singleton in (True, False):
        # ob_refcnt is the first field of every CPython object (a Py_ssize_t).
        ctypes.c_ssize_t.from_address(id(singleton)).value += _HEADROOM
    return True
