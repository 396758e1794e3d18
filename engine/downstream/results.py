"""The results file every downstream command writes and ``downstream report`` reads. Torch-free.

``{"format": "soundscape-downstream", "version": 1, "task": "classify"|"advance"|"segment",
"dataset": key, "dataset_title": ..., "protocol": {...}, "weights": {"source", "path", "label",
"arch", ...}, "split": {"train": n, "test": n, ...}, "metrics": {...}, "skipped": {"count", "files"},
"created": ISO time, "seconds": wall time, "device": ...}``
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from engine.files import atomic_write_text, json_safe

RESULTS_FORMAT = "soundscape-downstream"
RESULTS_VERSION = 1
TASKS = ("classify", "advance", "segment")


def make_result(task: str, dataset: str, dataset_title: str, protocol: dict, weights: dict, split: dict,
                metrics: dict, skipped: dict, started: float, device: str, **extra: Any) -> dict:
    """Assemble a results dict (see the module docstring)."""
    return {"format": RESULTS_FORMAT, "version": RESULTS_VERSION, "task": task, "dataset": dataset,
            "dataset_title": dataset_title, "protocol": protocol, "weights": weights, "split": split,
            "metrics": metrics, "skipped": skipped, **extra,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.time() - started, 1),
            "device": device}


def write_results(path: str | Path, result: dict) -> None:
    """Write ``result`` as strict JSON (NaN and infinities as null), atomically."""
    atomic_write_text(path, json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")


def read_results(path: str | Path) -> dict:
    """Read and check a results file. Raises :class:`UserInputError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(path, "results file not found", "give files written by 'downstream ... --out'")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserInputError(path, f"is not readable JSON ({err})", "give files written by 'downstream ... --out'") \
            from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise UserInputError(path, "is not a downstream results file", "give files written by 'downstream ... --out'")
    if data.get("version") != RESULTS_VERSION:
        raise UserInputError(path, f"results version {data.get('version')} is not {RESULTS_VERSION}",
                             "re-run the protocol with this version")
    if data.get("task") not in TASKS or not isinstance(data.get("metrics"), dict):
        raise UserInputError(path, "results file lacks its task or metrics", "re-run the protocol")
    return data
