"""The installed PySide6 keeps the reference counts of None/True/False balanced.

PySide6 6.12.0 returns them from ``Signal.emit()``, ``QTimer.start()`` and many other calls without a
new reference; pyqtgraph makes dozens of such calls per pan step, and on Python < 3.12 the process
aborts ("bool_dealloc") once a count reaches zero. pyproject.toml keeps that release out; this test
catches a Qt binding that brings the bug back.
"""

from __future__ import annotations

import sys
import textwrap

from tests.conftest import ROOT
from tests.reaping import run_reaped

CALLS = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal
    app = QCoreApplication([])
    class Source(QObject):
        changed = Signal()
    source, timer = Source(), QTimer()
    before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(2000):
        source.changed.emit()
        timer.start(1000)
        timer.stop()
        app.processEvents()
    after = sys.getrefcount(True), sys.getrefcount(None)
    print(after[0] - before[0], after[1] - before[1])
""")


def test_emit_and_timer_calls_keep_singleton_refcounts_balanced() -> None:
    result = run_reaped([sys.executable, "-c", CALLS], 120, cwd=ROOT,
                        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-400:]  # a broken binding aborts here on Python < 3.12
    true_delta, none_delta = (int(v) for v in result.stdout.split())
    assert abs(true_delta) < 50 and abs(none_delta) < 50  # 8,000 calls: a leak of one per call shows as thousands
