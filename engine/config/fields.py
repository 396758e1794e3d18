"""The strict reading of a config section: unknown keys are an error, never silently dropped."""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.errors import ConfigError


def known_fields(cls: type, data: dict[str, Any], section: str, fix: str | None = None) -> dict[str, Any]:
    """``data`` restricted to the dataclass's fields; unknown keys are a :class:`ConfigError`.

    Keys starting with ``_`` are notes for readers (e.g. derived values) and are ignored.

    Args:
        cls: the config dataclass.
        data: the section as read from JSON.
        section: the section's name, the subject of the error.
        fix: the error's fix (default: the list of known keys).
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(k for k in data if k not in names and not k.startswith("_"))
    if unknown:
        raise ConfigError(section, f"unknown keys {unknown}", fix or f"use only {sorted(names)}")
    return {k: v for k, v in data.items() if k in names}
