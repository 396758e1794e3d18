"""The guard against PySide6 6.12.0's reference-count bugs on Python < 3.12 (see app/qt_compat.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

MANY_CALLS = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QObject, QTimer, Signal
    emits = sys.getrefcount(True) + 1000  # more emits (each returns True) than True has references
    starts = sys.getrefcount(None) + 1000  # more QTimer.start() (each returns None) than None has
    {guard}
    class Source(QObject):
        changed = Signal()
    s = Source()
    for _ in range(emits):
        s.changed.emit()
    timer = QTimer()
    for _ in range(starts):
        timer.start(1000)
    timer.stop()
    import gc; gc.collect()
    print("survived", flush=True)
""")


def run(guard: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", MANY_CALLS.format(guard=guard)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_many_calls_survive_with_the_guard() -> None:
    result = run("from app.qt_compat import protect_singleton_refcounts; protect_singleton_refcounts()")
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip() == "survived"


def test_the_guard_is_needed_where_it_applies() -> None:
    """Without the guard, this PySide6 on this Python aborts; with a fixed PySide6 or Python >= 3.12 it
    survives, and then app/qt_compat.py can go."""
    result = run("")
    if sys.version_info >= (3, 12):
        assert result.returncode == 0
    else:
        import PySide6

        fixed = result.returncode == 0
        assert fixed or "_dealloc: deallocating" in result.stderr, result.stderr[-500:]
        if fixed:
            print(f"PySide6 {PySide6.__version__} no longer needs app/qt_compat.py")
