"""A guard against reference-count bugs in PySide6 6.12.0 on Python 3.10 and 3.11.

With that PySide6 (an abi3 wheel), calls that return ``None``, ``True`` or ``False`` to Python hand
them back without a new reference: ``Signal.emit()`` (returns ``True``), ``QTimer.start()``,
``QCoreApplication.processEvents()``, ``QTableWidget.item()`` on an empty cell (``None``) and many
more. Each such call takes a reference away from the singleton, and pyqtgraph makes dozens of them per
pan or zoom step (measured: ``ViewBox.translateBy`` -4 on ``True`` and -11 on ``None``), so after a
while the count reaches zero and CPython aborts with "bool_dealloc" or "none_dealloc" (it did at exit
and after panning). Python 3.12 made these objects immortal, which hides the bug there.

The guard gives the three singletons a reference count so large that it cannot run out; they are
static objects that are never freed anyway, so nothing else changes.
"""

from __future__ import annotations

import sys

_HEADROOM = 1 << 40  # a trillion unbalanced returns


def protect_singleton_refcounts() -> bool:
    """Apply the guard once on CPython < 3.12. Returns True when it changed anything."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if sys.getrefcount(None) > _HEADROOM // 2:
        return False  # already applied
    import ctypes

    for singleton in (None, True, False):
        # ob_refcnt is the first field of every CPython object (a Py_ssize_t).
        ctypes.c_ssize_t.from_address(id(singleton)).value += _HEADROOM
    return True
