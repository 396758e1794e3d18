"""The evaluate command on a tiny trained run: outputs, consistency with its own ranks, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.audio import FrontEndConfig, chunk_log_mel
from engine.cli import main
from engine.embedding import embed_clips


def test_evaluate_writes_metrics_ranks_and_plot(tiny_world: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval" / "test.json"
    rc = main(["evaluate", "--run", str(tiny_world["run"]), "--data", str(tiny_world["data"]), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "test split, 8 pairs, paper protocol, checkpoint best" in printed
    report = json.loads(out.read_text())
    assert (report["split"], report["protocol"], report["gallery"], report["split_rule"]) == ("test", "paper", 8,
                                                                                             "column")
    with open(out.with_name("test_ranks.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and {r["key"] for r in rows} == {f"p{i:03d}" for i in range(48) if i % 6 == 4}
    for direction in ("image_to_audio", "audio_to_image"):
        ranks = np.array([float(r[f"rank_{direction}"]) for r in rows])
        m = report[direction]
        assert m["median_rank"] == pytest.approx(np.median(ranks))
        assert m["R@1"] == pytest.approx(np.mean(ranks <= 1)) and m["paper_R@5"] == pytest.approx(np.mean(ranks < 5))
        assert 1 <= ranks.min() and ranks.max() <= 8
    png = out.with_name("test_recall.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    plain = tmp_path / "plain.json"
    assert main(["evaluate", "--run", str(tiny_world["run"]), "--data", str(tiny_world["data"]), "--out", str(plain),
                 "--protocol", "plain", "--checkpoint", "last", "--split", "val"]) == 0
    assert json.loads(plain.read_text())["protocol"] == "plain"


def test_evaluate_bad_input(tiny_world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluate", "--run", str(tmp_path), "--data", str(tiny_world["data"]), "--out", str(tmp_path / "m.json")])
    assert rc == 2 and f"{tmp_path}: is not a run folder" in capsys.readouterr().err
    # A table whose rows are all train: the test split is empty.
    lines = (tiny_world["data"] / "pairs.csv").read_text().splitlines()
    table = tiny_world["data"] / "all_train.csv"
    table.write_text("\n".join([lines[0]] + [ln.replace(",test", ",train").replace(",val", ",train")
                                             for ln in lines[1:]]))
    rc = main(["evaluate", "--run", str(tiny_world["run"]), "--data", str(table), "--out", str(tmp_path / "m.json")])
    assert rc == 2
    assert capsys.readouterr().err.strip().endswith(f"--split test: 0 usable pairs in {table} (split rule column); "
                                                    "choose another split or dataset")


def test_clips_are_embedded_as_the_mean_of_their_chunks() -> None:
    torch.manual_seed(0)
    cfg = FrontEndConfig()
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4))
    long_clip = np.random.default_rng(0).normal(size=(128, 3 * cfg.chunk_frames + 150)).astype(np.float32)
    other_clip = long_clip[:, 5:2 * cfg.chunk_frames + 55]
    short_clip = long_clip[:, :100]
    got = embed_clips(encoder.eval(), [long_clip, other_clip], cfg, torch.device("cpu"), max_batch=3)
    chunks = torch.from_numpy(chunk_log_mel(long_clip, cfg))
    assert chunks.shape[0] == 4  # 3 full chunks + an end-aligned one for the 150-frame remainder
    torch.testing.assert_close(got[0], encoder(chunks).mean(0).detach(), rtol=1e-5, atol=1e-6)
    # 2 chunks; a 50-frame remainder (under half a chunk) adds none.
    other = torch.from_numpy(np.stack([other_clip[None, :, :cfg.chunk_frames],
                                       other_clip[None, :, cfg.chunk_frames:2 * cfg.chunk_frames]]))
    torch.testing.assert_close(got[1], encoder(other).mean(0).detach(), rtol=1e-5, atol=1e-6)
    # A clip shorter than a chunk is embedded whole (its own length).
    short_encoder = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d((2, 2)), torch.nn.Flatten())
    got_short = embed_clips(short_encoder, [short_clip], cfg, torch.device("cpu"))
    expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(short_clip)[None, None], (2, 2)).flatten()
    torch.testing.assert_close(got_short[0], expected)
