"""Scene classification protocols on tiny generated datasets in the official layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.downstream.classify import ClassifyConfig, run_classification
from engine.downstream.layouts import SCENE_DATASETS
from engine.downstream.linear_probe import fit_logistic_regression
from engine.downstream.metrics import classification_summary, confusion_matrix
from engine.downstream.splits import stratified_split
from engine.downstream.weights import load_weights
from engine.errors import ConfigError


def _random(width: int = 8):
    return load_weights("random", width=width, seed=0)


@pytest.mark.parametrize("key", ["ucmerced", "aid", "resisc45"])
def test_linear_probe_on_a_random_encoder_beats_chance(scene_root: Path, key: str) -> None:
    n = len(SCENE_DATASETS[key].classes)
    result = run_classification(ClassifyConfig(dataset=key, root=str(scene_root), image_size=32, workers=0), _random())
    m = result["metrics"]
    assert m["accuracy"] >= 10 / n  # chance is 1/n: at least ten times chance
    assert result["split"] == {"train": 2 * n, "test": 2 * n, "test_scored": 2 * n, "train_fraction": 0.5, "seed": 0}
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (n, n) and cm.sum() == 2 * n and cm.sum(axis=1).tolist() == [2] * n
    assert m["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert list(m["per_class_accuracy"]) == list(SCENE_DATASETS[key].classes)
    assert result["protocol"]["mode"] == "linear" and result["weights"]["source"] == "random"


def test_a_perfect_classifier_scores_one_by_the_same_code() -> None:
    labels = np.repeat(np.arange(21), 3)
    oracle_features = np.eye(21)[labels] * 5.0  # features that say the class outright
    model = fit_logistic_regression(oracle_features, labels, 21)
    summary = classification_summary(confusion_matrix(labels, model.predict(oracle_features), 21), list("x" * 21))
    assert summary["accuracy"] == 1.0 and summary["macro_f1"] == 1.0


def test_alternate_split_is_every_other_image(scene_root: Path) -> None:
    result = run_classification(ClassifyConfig(dataset="ucmerced", root=str(scene_root), split="alternate",
                                               image_size=32, workers=0), _random())
    assert result["split"]["train"] == 42 and result["split"]["seed"] is None
    with pytest.raises(ConfigError, match="always 50/50"):
        ClassifyConfig(dataset="ucmerced", root=".", split="alternate", train_fraction=0.8)


def test_an_image_that_does_not_decode_is_skipped_and_counted(scene_root: Path, copy_of) -> None:
    root = copy_of(scene_root / "UCMerced_LandUse")
    bad = root / "Images" / "forest" / "forest01.tif"
    bad.write_bytes(b"\x00" * 100)
    result = run_classification(ClassifyConfig(dataset="ucmerced", root=str(root), image_size=32, workers=0,
                                               train_fraction=0.5), _random())
    assert result["skipped"] == {"count": 1, "files": [str(bad)]}
    assert result["split"]["train"] + result["split"]["test"] == 84
    # forest is class 7, so forest01 is item 7 * 4 + 1; it lowers the scored test count only if it is a test image
    _, test = stratified_split(np.repeat(np.arange(21), 4), 0.5, 0)
    expected = 42 - int(29 in test)
    assert result["split"]["test_scored"] == expected
    assert np.array(result["metrics"]["confusion_matrix"]).sum() == expected


def test_finetuning_trains_the_backbone_and_beats_chance(scene_root: Path) -> None:
    enc = _random()
    before = enc.image.backbone.layer1[0].conv1.weight.detach().clone()
    cfg = ClassifyConfig(dataset="ucmerced", root=str(scene_root), mode="finetune", image_size=32, workers=0,
                         epochs=10, lr=3e-3, batch_size=8)
    result = run_classification(cfg, enc)
    assert not torch.equal(before, enc.image.backbone.layer1[0].conv1.weight.detach().cpu())
    assert result["metrics"]["accuracy"] >= 5 / 21
    losses = [h["loss"] for h in result["history"]]
    assert losses[-1] < losses[0]
    assert result["protocol"]["epochs"] == 10 and result["protocol"]["head_lr"] == pytest.approx(3e-2)


def test_cli_writes_results_naming_protocol_split_seed_and_weights(scene_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "r" / "aid.json"
    code = main(["downstream", "classify", "--dataset", "aid", "--root", str(scene_root / "AID"), "--weights",
                 "random", "--width", "8", "--image-size", "32", "--workers", "0", "--seed", "7",
                 "--train-fraction", "0.75", "--label", "Scratch", "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["format"] == "soundscape-downstream" and result["task"] == "classify"
    assert result["split"]["train"] == 90 and result["split"]["test"] == 30 and result["split"]["seed"] == 7
    assert result["protocol"]["train_fraction"] == 0.75 and result["protocol"]["image_size"] == 32
    assert result["weights"]["label"] == "Scratch" and result["weights"]["arch"] == "resnet18"


def test_cli_refuses_another_dataset_in_one_line(scene_root: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    code = main(["downstream", "classify", "--dataset", "ucmerced", "--root", str(scene_root / "AID"),
                 "--weights", "random", "--width", "8", "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == (f"error: {scene_root / 'AID'}: is AID, not UC Merced Land Use; pass the matching "
                                     "--dataset/sub-command, or point --root at the UC Merced Land Use folder")
    assert not (tmp_path / "x.json").exists()
