"""Atomic writes and strict JSON, shared by checkpoints, configs, results and manifests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine.files import atomic_write_bytes, atomic_write_text, json_safe


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.json"
    atomic_write_text(target, '{"v": 1}')
    assert json.loads(target.read_text()) == {"v": 1}

    def fail_halfway(f) -> None:
        f.write(b'{"v": 2')
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, fail_halfway)
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_json_safe_turns_non_finite_numbers_into_null() -> None:
    value = {"a": math.nan, "b": [1.5, math.inf, (-math.inf, 2)], "c": {"d": "x"}}
    assert json.dumps(json_safe(value), allow_nan=False) == '{"a": null, "b": [1.5, null, [null, 2]], "c": {"d": "x"}}'
