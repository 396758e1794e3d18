"""Typed errors for users: each message names the file (or option) and the fix, on one line."""

from __future__ import annotations

from pathlib import Path


class UserInputError(ValueError):
    """Bad input a user can fix. ``str(err)`` is a complete one-line message."""

    def __init__(self, subject: str | Path | None, problem: str, fix: str | None = None) -> None:
        self.subject = str(subject) if subject is not None else None
        self.problem = problem
        self.fix = fix
        parts = [f"{self.subject}: {problem}" if self.subject else problem]
        if fix:
            parts.append(fix)
        super().__init__("; ".join(parts).replace("\n", " "))


class AudioFileError(UserInputError):
    """An audio file that cannot be used (missing, unreadable, too short, NaN samples ...)."""


class ImageFileError(UserInputError):
    """An image or raster that cannot be used."""


class DatasetError(UserInputError):
    """A dataset folder or table that cannot be used as a whole."""


class ConfigError(UserInputError):
    """A preset, option or config value that is wrong."""


class BundleError(UserInputError):
    """A model bundle that is missing, corrupt, of another version or fails its hash check."""


class AtlasError(UserInputError):
    """An atlas that is missing, corrupt, of another version or built with another bundle."""


class CheckpointError(UserInputError):
    """A checkpoint that is missing or cannot be loaded."""


class Cancelled(Exception):
    """Raised inside long jobs when the user cancels; work done so far is kept."""


class TrainingError(UserInputError):
    """A training run that cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


class DiskFullError(UserInputError):
    """A write that failed because the disk (or the user's quota) is full; the previous file is intact."""


class FolderBusyError(UserInputError):
    """A run folder or atlas that another live process is writing (it holds the folder's lock)."""
