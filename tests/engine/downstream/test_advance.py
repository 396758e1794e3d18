"""ADVANCE linear evaluation on a tiny generated ADVANCE (class tones in noise, class colours)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.checkpoint import save_checkpoint, write_run_config
from engine.cli import main
from engine.config.model import ModelConfig
from engine.downstream.advance import AdvanceConfig, run_advance
from engine.downstream.weights import load_weights
from engine.errors import ConfigError
from engine.models import build_audio_encoder, build_image_encoder


def test_random_encoders_beat_chance_on_audio_image_and_both(advance_root: Path) -> None:
    enc = load_weights("random", width=8, seed=0, need_audio=True)
    result = run_advance(AdvanceConfig(root=str(advance_root), image_size=32, workers=0, repeats=2), enc)
    for modality in ("audio", "image", "both"):
        block = result["metrics"][modality]
        assert block["macro_f1"] >= 0.6  # chance is 1/13
        assert len(block["repeats"]) == 2
        assert block["macro_f1"] == pytest.approx(sum(r["macro_f1"] for r in block["repeats"]) / 2)
        assert sum(map(sum, block["confusion_matrix"])) == 2 * 13  # 13 test pairs, twice
    assert result["split"] == {"pairs": 52, "train": 39, "test": 13, "train_fraction": 0.8, "seed": 0, "repeats": 2}
    assert result["protocol"]["front_end"]["sample_rate"] == 22050


def test_bad_and_unpaired_sounds_are_skipped_and_counted(advance_root: Path, copy_of) -> None:
    root = copy_of(advance_root)
    bad = sorted((root / "sound" / "forest").iterdir())[0]
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    lonely = sorted((root / "vision" / "lake").iterdir())[0]
    (root / "sound" / "lake" / (lonely.stem + ".wav")).unlink()
    enc = load_weights("random", width=8, seed=0, need_audio=True)
    result = run_advance(AdvanceConfig(root=str(root), image_size=32, workers=0, repeats=1), enc)
    assert result["skipped"]["files"] == sorted([str(bad), str(lonely)])
    assert result["split"]["pairs"] == 50


def test_advance_from_a_run_folder_and_refusals(advance_root: Path, tmp_path: Path) -> None:
    cfg = ModelConfig(image_width=8, audio_width=8, image_size=64)
    run = tmp_path / "my-run"
    write_run_config(run, {"model": cfg.to_dict(), "front_end": {}, "data": {}, "train": {}, "preset": "test"})
    image, audio = build_image_encoder(cfg), build_audio_encoder(cfg)
    save_checkpoint(run / "checkpoints" / "last.pt", {"image_encoder": image.state_dict(),
                                                     "audio_encoder": audio.state_dict(), "epoch": 3, "step": 9})
    out = tmp_path / "adv.json"
    assert main(["downstream", "advance", "--root", str(advance_root), "--weights", str(run), "--image-size", "32",
                 "--workers", "0", "--repeats", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["weights"]["label"] == "my-run" and result["weights"]["source"] == "run"
    assert result["weights"]["epoch"] == 3
    weights_file = tmp_path / "r18.pth"
    weights_file.write_bytes(b"x")
    with pytest.raises(ConfigError, match="holds only image weights"):
        load_weights(str(weights_file), need_audio=True)
