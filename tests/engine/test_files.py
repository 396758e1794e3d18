"""Atomic writes and strict JSON, shared by checkpoints, configs, results and manifests."""

from __future__ import annotations

import json
import math
import os
import stat
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


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_written_files_are_readable_like_ordinary_files(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "manifest.json", "{}")
    assert stat.S_IMODE((tmp_path / "manifest.json").stat().st_mode) == 0o644  # not mkstemp's private 0600
    (tmp_path / "mine.json").write_text("{}")
    (tmp_path / "mine.json").chmod(0o600)
    atomic_write_text(tmp_path / "mine.json", "[]")  # a replaced file keeps its mode
    assert stat.S_IMODE((tmp_path / "mine.json").stat().st_mode) == 0o600


def test_json_safe_turns_non_finite_numbers_into_null() -> None:
    value = {"a": math.nan, "b": [1.5, math.inf, (-math.inf, 2)], "c": {"d": "x"}}
    assert json.dumps(json_safe(value), allow_nan=False) == '{"a": null, "b": [1.5, null, [null, 2]], "c": {"d": "x"}}'
