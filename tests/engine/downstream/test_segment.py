"""DeepGlobe segmentation: the DeepLab heads, tiled evaluation, training, and bad masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from engine.cli import main
from engine.config.model import ModelConfig
from engine.downstream import deepglobe
from engine.downstream.data import SkippedFiles
from engine.downstream.deeplab import DeepLab, dilate_backbone
from engine.downstream.segment import SceneDataset, SegmentConfig, evaluate_segmentation, run_segmentation
from engine.downstream.weights import load_weights
from engine.errors import UserInputError
from engine.models import build_image_encoder
from tests.engine.downstream.make_fixtures import class_colour

SMALL = dict(head_channels=16, crop=32, crops_per_image=4, batch_size=8, lr=1e-3, workers=0, eval_tile=32)


@pytest.mark.parametrize("replace,stride", [([False, True, True], 8), ([False, False, True], 16)])
def test_dilation_matches_torchvision(replace: list[bool], stride: int) -> None:
    tv = torchvision.models.resnet50(replace_stride_with_dilation=replace).eval()
    enc = build_image_encoder(ModelConfig(image_arch="resnet50"))
    enc.backbone.load_state_dict({k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")})
    dilate_backbone(enc.backbone, stride)
    enc.eval()
    x = torch.rand(1, 3, 64, 64)
    expected = torch.nn.Sequential(*list(tv.children())[:-2])(x)
    assert expected.shape[-1] == 64 // stride
    torch.testing.assert_close(enc.backbone.feature_map(x), expected)


@pytest.mark.parametrize("head", ["deeplabv3plus", "deeplabv3"])
def test_heads_give_full_resolution_logits(head: str) -> None:
    model = DeepLab(build_image_encoder(ModelConfig(image_width=8)), 6, head, 16, 16).eval()
    assert model(torch.rand(2, 3, 48, 80)).shape == (2, 6, 48, 80)


def _oracle(x: torch.Tensor) -> torch.Tensor:
    """Labels from pixel colours: the nearest of the fixture's class colours (a perfect predictor)."""
    colours = torch.tensor(np.stack([class_colour(k, 6) for k in range(6)]), dtype=torch.float32) / 255
    dist = ((x[:, :, None] - colours.T[None, :, :, None, None]) ** 2).sum(1)
    return dist.argmin(1)


def test_a_perfect_predictor_scores_one_through_the_tiled_evaluation(deepglobe_root: Path) -> None:
    samples = deepglobe.list_deepglobe(deepglobe_root)
    scenes = SceneDataset(samples.images, samples.masks, np.arange(len(samples.ids)))
    for tile in (0, 24, 64):  # whole scene; tiles with an edge-aligned last one; one tile
        cm, scored = evaluate_segmentation(_oracle, scenes, 6, tile, torch.device("cpu"), SkippedFiles())
        assert scored == 10
        labels = np.concatenate([deepglobe.read_mask(m).ravel() for m in samples.masks])
        assert cm.sum() == (labels >= 0).sum()  # every labelled pixel once, unknown ones never
        assert np.trace(cm) == cm.sum()  # OA 1, and so mIoU 1


def test_training_beats_the_majority_class(deepglobe_root: Path) -> None:
    enc = load_weights("random", width=8, seed=0)
    result = run_segmentation(SegmentConfig(root=str(deepglobe_root), epochs=12, **SMALL), enc)
    m = result["metrics"]
    cm = np.array(m["confusion_matrix"])
    majority = cm.sum(axis=1).max() / cm.sum()
    assert m["overall_accuracy"] >= majority + 0.2
    assert m["mean_iou"] == pytest.approx(np.nanmean([v for v in m["per_class_iou"].values() if v is not None]))
    assert result["split"]["train"] == 8 and result["split"]["test"] == 2 and len(result["split"]["test_ids"]) == 2


def test_a_mask_with_a_foreign_colour_stops_the_run(deepglobe_root: Path, copy_of, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    root = copy_of(deepglobe_root)
    mask_path = root / "train" / "174_mask.png"
    rgb = np.array(Image.open(mask_path))
    rgb[10:12, 3:6] = (255, 0, 0)
    Image.fromarray(rgb).save(mask_path)
    out = tmp_path / "seg.json"
    code = main(["downstream", "segment", "--root", str(root), "--weights", "random", "--width", "8",
                 "--crop", "32", "--head-channels", "16", "--epochs", "1", "--batch-size", "8",
                 "--crops-per-image", "4", "--workers", "0", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and not out.exists()
    assert err == (f"error: {mask_path}: colour (255, 0, 0) at x=3, y=10 is not one of the 7 DeepGlobe codes "
                   "(6 pixels); use the masks as distributed")


def test_an_image_that_does_not_decode_is_skipped(deepglobe_root: Path, copy_of, tmp_path: Path) -> None:
    root = copy_of(deepglobe_root)
    bad = root / "train" / "211_sat.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    out = tmp_path / "seg.json"
    assert main(["downstream", "segment", "--root", str(root), "--weights", "random", "--width", "8",
                 "--crop", "32", "--head-channels", "16", "--epochs", "1", "--batch-size", "8",
                 "--crops-per-image", "4", "--workers", "0", "--eval-tile", "0", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["skipped"]["files"] == [str(bad)]
    assert result["protocol"]["head"] == "deeplabv3plus" and result["weights"]["width"] == 8


def test_a_mask_of_another_size_stops_the_run(deepglobe_root: Path, copy_of) -> None:
    root = copy_of(deepglobe_root)
    mask_path = root / "train" / "100_mask.png"
    Image.fromarray(np.array(Image.open(mask_path))[:, :48]).save(mask_path)
    enc = load_weights("random", width=8, seed=0)
    cfg = SegmentConfig(root=str(root), epochs=1, train_fraction=0.9, **SMALL)  # every scene but one trains
    with pytest.raises(UserInputError, match=r"100_mask.png: is 48×64 px but its image is 64×64"):
        run_segmentation(cfg, enc)
