"""Training and evaluation on a CUDA device (skipped without one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_encoders
from engine.cli import main

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")]


def test_tiny_run_on_cuda_evaluates_like_the_cpu(tiny_world: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_world["data"]), "--preset", "tiny", "--device", "cuda", "--epochs", "3",
                 "--out", str(run), "--sample-cache-dir", str(tiny_world["cache"])]) == 0
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["device"] == "cuda"
    loaded = load_encoders(run, "last")  # a CUDA-trained checkpoint loads on the CPU
    assert loaded.checkpoint["epoch"] == 3 and next(loaded.image_encoder.parameters()).device.type == "cpu"
    reports = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.json"
        assert main(["evaluate", "--run", str(run), "--data", str(tiny_world["data"]), "--split", "all",
                     "--device", device, "--out", str(out)]) == 0
        reports[device] = json.loads(out.read_text())
    for direction in ("image_to_audio", "audio_to_image"):
        cpu, gpu = reports["cpu"][direction], reports["cuda"][direction]
        assert gpu["median_rank"] == pytest.approx(cpu["median_rank"], abs=0.5)
        assert gpu["mean_rank"] == pytest.approx(cpu["mean_rank"], rel=0.02)
