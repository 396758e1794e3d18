"""One module per ``soundscape-engine`` sub-command (``add_arguments`` and ``run``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_renamed_flag(parser: argparse.ArgumentParser | Any, old: str, new: str, dest: str,
                     flag: bool = False, **kwargs: Any) -> None:
    """Keep accepting ``old``, an earlier spelling of ``new`` (same ``dest``), hidden from ``--help``.

    Using it works as ``new`` does and prints a one-line note to stderr, so scripts keep running while
    their authors learn the new name. ``flag``: a store_true option.
    """
    base = argparse._StoreTrueAction if flag else argparse._StoreAction

    class _Renamed(base):  # type: ignore[misc, valid-type]
        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                     option_string: str | None = None) -> None:
            print(f"note: {old} is deprecated; use {new}", file=sys.stderr)
            super().__call__(parser, namespace, values, option_string)

    parser.add_argument(old, dest=dest, action=_Renamed, help=argparse.SUPPRESS, **kwargs)


def parse_lonlat(text: str) -> tuple[float, float]:
    """``--lonlat=LON,LAT`` -> (lon, lat); one line naming the option otherwise."""
    from engine.errors import ConfigError

    try:
        lon, lat = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError("--lonlat", f"{text!r} is not LON,LAT", "write e.g. --lonlat=-77.75,24.56") from None
    return lon, lat
