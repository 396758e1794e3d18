"""Training on a campaign, fine-tuning with --init (the weights it names, and their hash), freezing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_checkpoint, load_encoders, save_checkpoint
from engine.cli import build_parser, main
from engine.commands.train import resolve_config
from engine.progress import Job
from engine.train.campaign_data import SiteRoundSampler, campaign_train_loader, open_campaign
from engine.train.loop import _Trainer
from engine.train.run_book import torch_settings
from tests.engine.campaign.fixture import make_campaign


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 12-site campaign and a 'tiny' run trained on it for 2 epochs through the CLI."""
    root = tmp_path_factory.mktemp("campaign_train")
    paths = {"campaign": make_campaign(root, n_sites=12, files_per_site=2, seconds=3.0),
             "cache": root / "cache", "run": root / "run", "root": root}
    rc = main(["train", "--data", str(paths["campaign"]), "--preset", "tiny", "--out", str(paths["run"]),
               "--sample-cache-dir", str(paths["cache"]), "--ground-size-m", "180", "--holdout-sites", "S01,S10"])
    assert rc == 0
    return paths


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _setup_trainer(paths: dict[str, Path], init: Path, out: Path) -> _Trainer:
    """A fine-tuning session set up exactly as 'train --init' does, before its first step."""
    args = build_parser().parse_args(["train", "--data", str(paths["campaign"]), "--preset", "field-finetune",
                                      "--init", str(init), "--out", str(out), "--sample-cache-dir", str(paths["cache"])])
    cfg = resolve_config(args)
    with torch_settings(cfg):
        return _Trainer(cfg, paths["campaign"], out, False, Job(), paths["cache"], None, lambda text: None)


def _outputs(image: torch.nn.Module, audio: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x_img, x_aud = torch.rand(2, 3, 32, 32, generator=g), torch.randn(2, 1, 128, 40, generator=g)
    image.eval()
    audio.eval()
    with torch.no_grad():
        return image(x_img), audio(x_aud)


def test_campaign_run_records_sites_and_ground_size(source_run: dict[str, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUNDSCAPE_CACHE", str(source_run["cache"]))  # evaluate's chips: not the user's cache
    config = json.loads((source_run["run"] / "config.json").read_text())
    assert config["dataset"]["kind"] == "campaign" and config["dataset"]["pairs"]["test"] == 2
    assert config["data"]["ground_size_m"] == pytest.approx(180.0)
    assert config["data"]["holdout_sites"] == ["S01", "S10"]
    out = source_run["root"] / "eval.json"
    assert main(["evaluate", "--run", str(source_run["run"]), "--data", str(source_run["campaign"]),
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["gallery"] == 2 and report["image_to_audio"]["median_rank"] in (1.0, 1.5, 2.0)


def test_init_loads_the_weights_it_names(source_run: dict[str, Path], tmp_path: Path) -> None:
    trainer = _setup_trainer(source_run, source_run["run"], tmp_path / "ft")
    reference = load_encoders(source_run["run"], "best")
    got, want = _outputs(trainer.image_encoder, trainer.audio_encoder), _outputs(reference.image_encoder,
                                                                               reference.audio_encoder)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    init = json.loads((tmp_path / "ft" / "config.json").read_text())["init"]
    which = "best" if (source_run["run"] / "checkpoints" / "best.pt").exists() else "last"
    ckpt = source_run["run"] / "checkpoints" / f"{which}.pt"
    assert init["run"] == str(source_run["run"].resolve()) and init["checkpoint"] == which
    assert init["sha256"] == _sha256(ckpt)
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["model"] == reference.config["model"] and config["front_end"] == reference.config["front_end"]
    trainer.log.close()

    # A changed tensor in the source run: a different hash is recorded and the first forward differs.
    changed = tmp_path / "changed"
    shutil.copytree(source_run["run"], changed)
    payload = load_checkpoint(changed / "checkpoints" / f"{which}.pt")
    payload["audio_encoder"]["head.bias"] = payload["audio_encoder"]["head.bias"] + 0.5
    save_checkpoint(changed / "checkpoints" / f"{which}.pt", payload)
    other = _setup_trainer(source_run, changed, tmp_path / "ft2")
    other_init = json.loads((tmp_path / "ft2" / "config.json").read_text())["init"]
    assert other_init["sha256"] != init["sha256"]
    moved = _outputs(other.image_encoder, other.audio_encoder)
    assert torch.equal(moved[0], want[0]) and not torch.allclose(moved[1], want[1])
    other.log.close()


def test_preset_with_another_model_is_refused(source_run: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "--data", str(source_run["campaign"]), "--preset", "demo-cpu", "--init",
               str(source_run["run"]), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: --preset demo-cpu: its model section disagrees")
    assert not (tmp_path / "x").exists()


def test_frozen_backbone_then_layer4(source_run: dict[str, Path], tmp_path: Path) -> None:
    preset = json.loads((Path("engine/config/presets/field-finetune.json")).read_text())
    preset["train"].update(epochs=2, freeze_epochs=1, trainable="layer4", threads=1, deterministic=True)
    preset_file = tmp_path / "ft.json"
    preset_file.write_text(json.dumps(preset))
    start = load_checkpoint(source_run["run"] / "checkpoints" / "best.pt"
                            if (source_run["run"] / "checkpoints" / "best.pt").exists()
                            else source_run["run"] / "checkpoints" / "last.pt")
    assert main(["train", "--data", str(source_run["campaign"]), "--preset", str(preset_file), "--init",
                 str(source_run["run"]), "--out", str(tmp_path / "ft"), "--sample-cache-dir", str(source_run["cache"]),
                 "--epochs", "1"]) == 0
    after_head = load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.pt")
    for enc in ("image_encoder", "audio_encoder"):
        for name, tensor in start[enc].items():
            same = torch.equal(tensor, after_head[enc][name])
            assert same == (not name.startswith("head.")), (enc, name)  # BN statistics kept too
    assert main(["train", "--resume", "--out", str(tmp_path / "ft"), "--epochs", "2", "--sample-cache-dir",
                 str(source_run["cache"])]) == 0
    after_l4 = load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.pt")
    for enc in ("image_encoder", "audio_encoder"):
        assert torch.equal(after_l4[enc]["backbone.layer3.0.conv1.weight"], start[enc]["backbone.layer3.0.conv1.weight"])
        assert not torch.equal(after_l4[enc]["backbone.layer4.0.conv1.weight"],
                               start[enc]["backbone.layer4.0.conv1.weight"])


def test_epoch_draws_each_training_site_once_per_round(source_run: dict[str, Path]) -> None:
    from engine.config.run import load_preset

    cfg = load_preset("field-finetune").replace("data", ground_size_m=180.0, stored_size=32,
                                                holdout_sites=("S01", "S10"), samples_per_site=3)
    cfg = cfg.replace("train", batch_size=4)
    source = open_campaign(source_run["campaign"], cfg, source_run["cache"])
    train = source.indices("train")
    loader, sampler, dataset = campaign_train_loader(source, train, cfg)
    assert isinstance(sampler, SiteRoundSampler) and sampler.batches_per_epoch() == 3 * -(-len(train) // 4)
    sampler.set_epoch(1)
    dataset.set_epoch(1)
    seen: list[str] = []
    for batch in loader:
        assert len(set(batch["key"])) == len(batch["key"]) <= 4  # no site twice in a batch
        seen += batch["key"]
    train_keys = sorted(source.records[i].key for i in train)
    assert sorted(seen) == sorted(train_keys * 3)  # every training site once per round, no test site


def test_export_checks_parity_on_the_campaign_sites(source_run: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.checkpoint import load_encoders as load
    from engine.export.parity import parity_inputs

    monkeypatch.setenv("SOUNDSCAPE_CACHE", str(source_run["cache"]))
    inputs = parity_inputs(load(source_run["run"], "last"), [], n_images=4)
    assert "campaign.json" in inputs.description and "synthetic images" not in inputs.description
    assert inputs.images.shape == (4, 32, 32, 3) and len(inputs.log_mels) >= 3
