"""A minimal observer: the plain-Python state announces changes without knowing about Qt."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Event:
    """A list of callbacks called in order on :meth:`emit`.

    The state layer runs on the GUI thread only (workers hand results back through Qt signals
    first), so no locking is needed. A callback that raises is logged and does not stop the
    others: one broken view must not take the rest of the window down.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``callback(*args)`` on every emit. Returns the callback (usable as a decorator)."""
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback``; unknown callbacks are ignored."""
        try:
            self._callbacks.remove(callback)
        except ValueError:
            pass

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            try:
                callback(*args)
            except Exception:
                log.exception("listener %r of event %s failed", callback, self.name)

    def __len__(self) -> int:
        return len(self._callbacks)
