"""Shared fixtures: the real data beside the project, and a way to run code with torch blocked.

A hang-proof suite: every test runs under pytest-timeout (``timeout`` in pyproject.toml, raised per test
with ``@pytest.mark.timeout(N)``), whose signal method fails the test and prints the stacks of all
threads. A test stuck where that signal cannot land (C code holding the GIL, e.g. a process-group
destructor) is caught by a faulthandler backstop :data:`BACKSTOP_MARGIN_S` later, which dumps every
thread's stack and ends the session instead of waiting forever. Child processes go through
:mod:`tests.reaping` (a session of their own, killed as a group).
"""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SOUNDSCAPE_SHARED", ROOT.parent / "shared"))
REALDATA = SHARED / "realdata"
REFERENCE = SHARED / "reference"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BACKSTOP_MARGIN_S = 120.0


def _test_timeout(item: pytest.Item) -> float:
    """The pytest-timeout limit of ``item`` (its mark, else --timeout, else the ini value; 0: none)."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and (marker.args or "timeout" in marker.kwargs):
        value = marker.args[0] if marker.args else marker.kwargs["timeout"]
    else:
        value = item.config.getoption("timeout", None) or item.config.getini("timeout")
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """The backstop: dump all threads and exit if a test outlives its timeout by BACKSTOP_MARGIN_S."""
    timeout = _test_timeout(item)
    if timeout <= 0:
        return (yield)
    try:  # pytest's own copy of the terminal's stderr (what its faulthandler plugin writes to)
        from _pytest.faulthandler import fault_handler_stderr_fd_key

        stderr = item.config.stash[fault_handler_stderr_fd_key]
    except (ImportError, KeyError):
        stderr = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
    faulthandler.dump_traceback_later(timeout + BACKSTOP_MARGIN_S, file=stderr, exit=True)
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def realdata() -> Path:
    """../shared/realdata, or skip: the real recordings and GeoTIFFs are not in the repository."""
    if not (REALDATA / "audio").is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent (it lives beside the project, in ../shared)")
    return REALDATA


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE / "soundingearth_reference_cases.json").is_file():
        pytest.skip(f"reference cases {REFERENCE} are absent (they live beside the project, in ../shared)")
    return REFERENCE
