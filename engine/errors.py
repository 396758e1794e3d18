"""Typed errors for users: each message names the file (or option) and the fix, on one line."""

from __future__ import annotations

import re
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
    """A training run that cannot go on (e.g. the loss became NaN; in the app, a failed ``train`` or ``export``
    process); the last good checkpoint is kept."""


def brief(err: BaseException | str, limit: int = 160, last_line: bool = False) -> str:
    """A library's error text for inside a one-line message: one of its lines (the first, or the last
    with ``last_line``), whitespace collapsed, and if longer than ``limit`` cut at a word boundary with
    "..." (never mid-word). An empty text gives the exception's type name."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # terminal colour codes (PyTorch bolds its advice)
    lines = [line for line in plain.splitlines() if line.strip()]
    if not lines:
        return type(err).__name__ if isinstance(err, BaseException) else ""
    text = " ".join((lines[-1] if last_line else lines[0]).split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 3)
    return text[:cut if cut > limit // 2 else limit - 3].rstrip(" ,;:") + "..."



class DiskFullError(UserInputError):
    """A write that failed because the disk (or the user's quota) is full; the previous file is intact."""


class FolderBusyError(UserInputError):
    """A run folder or atlas that another live process is writing (it holds the folder's lock)."""
