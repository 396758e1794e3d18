"""--weights resolution, and the report's tables against the results they were given."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torchvision

from engine.cli import main
from engine.downstream.report import format_cell, render_report
from engine.downstream.results import read_results, write_results
from engine.downstream.weights import PooledBackbone, load_weights
from engine.errors import ConfigError, UserInputError


def test_torchvision_file_random_and_nonsense(tmp_path: Path) -> None:
    tv = torchvision.models.resnet18()
    torch.save(tv.state_dict(), tmp_path / "imagenet-r18.pth")
    enc = load_weights(str(tmp_path / "imagenet-r18.pth"))
    assert enc.description["source"] == "file" and enc.label == "imagenet-r18"
    torch.testing.assert_close(enc.image.backbone.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    tv.eval()
    x = torch.rand(2, 3, 64, 64)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = torch.flatten(torch.nn.Sequential(*list(tv.children())[:-1])((x - mean) / std), 1)
    torch.testing.assert_close(PooledBackbone(enc.image)(x), expected)
    with pytest.raises(UserInputError, match="does not match"):
        load_weights(str(tmp_path / "imagenet-r18.pth"), arch="resnet50")
    a, b = load_weights("random", width=8, seed=3), load_weights("random", width=8, seed=3)
    torch.testing.assert_close(a.image.backbone.conv1.weight, b.image.backbone.conv1.weight)
    with pytest.raises(ConfigError, match="neither a run folder, a weights file nor 'random'"):
        load_weights(str(tmp_path / "nothing-here"))


def _result(task: str, dataset: str, label: str, arch: str, metrics: dict, **protocol) -> dict:
    return {"format": "soundscape-downstream", "version": 1, "task": task, "dataset": dataset,
            "dataset_title": dataset, "protocol": protocol, "metrics": metrics, "skipped": {"count": 0, "files": []},
            "weights": {"source": "run", "label": label, "arch": arch, "width": 64},
            "split": {"train": 10, "test": 10, "train_fraction": 0.5, "seed": 0}}


def _cells(markdown: str, title_part: str) -> dict[str, dict[str, str]]:
    """Parse the table under the heading containing ``title_part`` into {row: {column: cell}}."""
    block = markdown.split("### ")
    table = next(b for b in block if title_part in b)
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return {cells[0]: dict(zip(header[1:], cells[1:], strict=True))
            for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}


def test_report_cells_match_the_results(tmp_path: Path) -> None:
    results = [
        _result("classify", "ucmerced", "AudioVisual", "resnet18", {"accuracy": 0.90187}, mode="linear", image_size=256),
        _result("classify", "aid", "AudioVisual", "resnet18", {"accuracy": 0.8178}, mode="finetune", image_size=600,
                epochs=10, lr=1e-4),
        _result("classify", "ucmerced", "Random", "resnet18", {"accuracy": 0.5}, mode="linear", image_size=256),
        _result("segment", "deepglobe", "AudioVisual", "resnet18", {"overall_accuracy": 0.8611, "mean_iou": 0.6707},
                head="deeplabv3plus"),
        _result("segment", "deepglobe", "AudioVisual", "resnet50", {"overall_accuracy": 0.8658, "mean_iou": 0.6787},
                head="deeplabv3plus"),
        _result("advance", "advance", "Ours", "resnet18",
                {"audio": {"macro_f1": 0.3769, "weighted_f1": 0.40}, "image": {"macro_f1": 0.8692, "weighted_f1": 0.88},
                 "both": {"macro_f1": 0.8950, "weighted_f1": 0.91}}, features="embedding", repeats=5),
    ]
    paths = []
    for i, r in enumerate(results):
        paths.append(tmp_path / f"r{i}.json")
        write_results(paths[-1], r)
    out = tmp_path / "table.md"
    assert main(["downstream", "report", *map(str, paths), "--out", str(out)]) == 0
    text = out.read_text()
    scene = _cells(text, "Scene classification")
    assert scene == {"AudioVisual (ResNet-18)": {"UC Merced linear": "90.19", "AID fine-tune": "81.78"},
                     "Random (ResNet-18)": {"UC Merced linear": "50.00", "AID fine-tune": "–"}}
    assert _cells(text, "DeepGlobe") == {"AudioVisual": {"ResNet-18 OA": "86.11", "ResNet-18 mIoU": "67.07",
                                                         "ResNet-50 OA": "86.58", "ResNet-50 mIoU": "67.87"}}
    assert _cells(text, "ADVANCE") == {"Ours (ResNet-18)": {"Audio F1": "37.69", "Image F1": "86.92",
                                                            "Audio + Image F1": "89.50"}}
    weighted = render_report([read_results(p) for p in paths], f1="weighted")
    assert _cells(weighted, "ADVANCE")["Ours (ResNet-18)"]["Audio F1"] == "40.00"


def test_several_results_in_one_cell_are_averaged() -> None:
    assert format_cell([0.9, 0.8]) == "85.00 ± 5.00 (2)"
    assert format_cell([]) == "–" and format_cell([None]) == "–"
    runs = [_result("classify", "aid", "X", "resnet50", {"accuracy": a}, mode="linear") for a in (0.7, 0.8, 0.9)]
    cell = _cells(render_report(runs), "Scene")["X (ResNet-50)"]["AID linear"]
    mean, std, n = re.match(r"([\d.]+) ± ([\d.]+) \((\d)\)", cell).groups()
    assert (mean, n) == ("80.00", "3") and float(std) == pytest.approx(100 * 0.0816497, abs=0.006)


def test_report_refuses_files_that_are_not_results(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    other = tmp_path / "config.json"
    other.write_text(json.dumps({"format": "soundscape-run"}))
    assert main(["downstream", "report", str(other)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {other}: is not a downstream results file; give files "
                                               "written by 'downstream ... --out'")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(UserInputError, match="is not readable JSON"):
        read_results(broken)


def test_report_runs_without_torch(tmp_path: Path) -> None:
    from tests.test_torch_free import run_blocked

    path = tmp_path / "r.json"
    write_results(path, _result("classify", "resisc45", "AV", "resnet50", {"accuracy": 0.8488}, mode="linear"))
    done = run_blocked(f"from engine.cli import main; raise SystemExit(main(['downstream', 'report', {str(path)!r}]))")
    assert done.returncode == 0, done.stderr
    assert "| AV (ResNet-50) | 84.88 |" in done.stdout
