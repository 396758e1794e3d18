"""Atomic writes and strict JSON, shared by checkpoints, configs, results and manifests."""

from __future__ import annotations

import errno
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


def test_a_whole_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    from engine.errors import DatasetError
    from engine.files import write_whole_folder

    def fill(folder: Path) -> int:
        (folder / "a.txt").write_text("a")
        (folder / "_scratch").mkdir()
        (folder / "_scratch" / "tmp").write_text("x")
        return 7

    assert write_whole_folder(tmp_path / "out", fill, "demo world") == 7
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt"]  # scratch removed
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial folder left

    def full_disk(folder: Path) -> None:
        (folder / "half.bin").write_bytes(b"x" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DatasetError) as err:
        write_whole_folder(tmp_path / "new", full_disk, "demo campaign")
    assert str(err.value).startswith(str(tmp_path / "new")) and "No space left" in str(err.value)
    assert "free some disk space" in str(err.value) and "\n" not in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing left behind

    def racing(folder: Path) -> None:  # someone else fills the target meanwhile
        (tmp_path / "raced").mkdir()
        (tmp_path / "raced" / "theirs.txt").write_text("keep me")

    with pytest.raises(DatasetError, match="not empty"):
        write_whole_folder(tmp_path / "raced", racing, "demo world")
    assert [p.name for p in (tmp_path / "raced").iterdir()] == ["theirs.txt"]  # never overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raced"]
    with pytest.raises(DatasetError, match="exists and is not empty"):
        write_whole_folder(tmp_path / "out", fill, "demo world")
