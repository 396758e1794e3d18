"""Whether the training engine (PyTorch) is installed, and the state of installing it from the app."""

from __future__ import annotations

from app.state.observable import Event

# available: training can start. unavailable: it cannot, and the app cannot install it (the desktop
# bundle). missing: the app offers to install it. sizing: pip's dry run is finding out what to download.
# ready: the size is known, waiting for the user. installing: pip runs. failed / cancelled: as they say
# (the offer stands).
ENGINE_PHASES = ("available", "unavailable", "missing", "sizing", "ready", "installing", "failed", "cancelled")


class EngineState:
    """The Train tab's engine box: what is missing, the command that adds it, its size and progress."""

    def __init__(self) -> None:
        self.changed = Event("engine.changed")
        self.phase = "available"
        self.reason = ""  # why training cannot run now (one line), empty when it can
        self.command = ""  # the install command as a shell would show it
        self.download = ""  # "2.9 GB in 34 packages"
        self.expected_bytes: int | None = None
        self.fetched_bytes = 0
        self.last_line = ""  # pip's latest output line
        self.message = ""  # the outcome of the last attempt

    @property
    def busy(self) -> bool:
        return self.phase in ("sizing", "installing")

    def set_phase(self, phase: str, message: str | None = None) -> None:
        if phase not in ENGINE_PHASES:
            raise ValueError(f"unknown engine phase {phase!r}")
        self.phase = phase
        if message is not None:
            self.message = message
        self.changed.emit()

    def set_progress(self, fetched: int, expected: int | None, line: str) -> None:
        self.fetched_bytes, self.last_line = fetched, line
        if expected:
            self.expected_bytes = expected
        self.changed.emit()
