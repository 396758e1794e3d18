"""Renamed command-line flags: the new spellings parse, the old ones still work and say they are deprecated."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import build_parser


def test_new_flag_spellings_parse_without_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["train", "--out", "run", "--shards", "s", "--sample-cache-dir", "d",
                                      "--no-sample-cache"])
    assert (args.shards, args.sample_cache_dir, args.no_sample_cache) == (Path("s"), Path("d"), True)
    assert "deprecated" not in capsys.readouterr().err


@pytest.mark.parametrize(("old", "new", "dest", "value"), [
    (["--cache", "s"], "--shards", "shards", Path("s")),
    (["--cache-dir", "d"], "--sample-cache-dir", "sample_cache_dir", Path("d")),
    (["--no-cache"], "--no-sample-cache", "no_sample_cache", True),
])
def test_old_flag_spellings_still_work_with_a_one_line_note(capsys: pytest.CaptureFixture[str], old: list[str],
                                                            new: str, dest: str, value: object) -> None:
    args = build_parser().parse_args(["train", "--out", "run", *old])
    assert getattr(args, dest) == value
    err = capsys.readouterr().err
    assert err == f"note: {old[0]} is deprecated; use {new}\n"


def test_old_spellings_are_hidden_from_help() -> None:
    sub = build_parser()._subparsers._group_actions[0].choices["train"]  # the train sub-parser
    text = sub.format_help()
    assert "--shards" in text and "--sample-cache-dir" in text and "--no-sample-cache" in text
    assert "--cache " not in text and "--cache-dir" not in text and "--no-cache " not in text
