"""Encoders, torchvision weight loading, atomic checkpoints and loading a run back."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from engine.audio import FrontEndConfig
from engine.checkpoint import load_checkpoint, load_encoders, save_checkpoint, write_run_config
from engine.config.model import ModelConfig
from engine.errors import CheckpointError, ConfigError, DiskFullError, UserInputError
from engine.models import build_audio_encoder, build_image_encoder, load_torchvision_weights


def test_full_width_backbones_are_torchvision_resnets() -> None:
    for arch, ctor in (("resnet18", torchvision.models.resnet18), ("resnet50", torchvision.models.resnet50)):
        enc = build_image_encoder(ModelConfig(image_arch=arch))
        tv = ctor()
        tv_names = {k: v.shape for k, v in tv.state_dict().items() if not k.startswith("fc.")}
        ours = {k: v.shape for k, v in enc.backbone.state_dict().items()}
        assert ours == tv_names


def test_shapes_and_dynamic_time() -> None:
    cfg = ModelConfig(image_width=16, audio_width=16, image_size=64)
    img, aud = build_image_encoder(cfg).eval(), build_audio_encoder(cfg).eval()
    assert img(torch.rand(3, 3, 64, 64)).shape == (3, 128)
    for t in (20, 215, 431):
        assert aud(torch.randn(2, 1, 128, t)).shape == (2, 128)
    normed = build_audio_encoder(ModelConfig(image_width=16, audio_width=16, l2_normalise=True)).eval()
    z = normed(torch.randn(4, 1, 128, 50))
    torch.testing.assert_close(z.norm(dim=1), torch.ones(4))


def test_image_normalisation_is_inside_the_encoder() -> None:
    enc = build_image_encoder(ModelConfig(image_width=16)).eval()
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = enc.embed_features((x - mean) / std)
    torch.testing.assert_close(enc(x), expected)


def test_torchvision_weights_load_from_a_local_file(tmp_path: Path) -> None:
    tv = torchvision.models.resnet18()
    torch.save(tv.state_dict(), tmp_path / "r18.pth")
    enc = build_image_encoder(ModelConfig())
    load_torchvision_weights(enc, tmp_path / "r18.pth")
    torch.testing.assert_close(enc.backbone.layer3[1].conv2.weight, tv.layer3[1].conv2.weight)
    with pytest.raises(UserInputError, match="does not match"):
        load_torchvision_weights(build_image_encoder(ModelConfig(image_arch="resnet50")), tmp_path / "r18.pth")
    with pytest.raises(UserInputError, match="not found"):
        load_torchvision_weights(enc, tmp_path / "missing.pth")


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown architecture 'vgg'"):
        ModelConfig(image_arch="vgg")


def _make_run(run_dir: Path, cfg: ModelConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    img, aud = build_image_encoder(cfg), build_audio_encoder(cfg)
    write_run_config(run_dir, {"model": cfg.to_dict(), "front_end": FrontEndConfig().to_dict()})
    save_checkpoint(run_dir / "checkpoints" / "best.pt",
                    {"image_encoder": img.state_dict(), "audio_encoder": aud.state_dict(), "epoch": 3, "step": 30,
                     "metrics": {"val_median_rank": 4.0}})
    return img, aud


def test_run_round_trip(tmp_path: Path) -> None:
    cfg = ModelConfig(image_width=8, audio_width=8, image_size=32)
    img, aud = _make_run(tmp_path, cfg)
    run = load_encoders(tmp_path, "best")
    assert run.model == cfg and run.checkpoint["epoch"] == 3 and not run.image_encoder.training
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(run.image_encoder(x), img.eval()(x))
    run_last = load_encoders(tmp_path, "last") if (tmp_path / "checkpoints/last.pt").exists() else None
    assert run_last is None
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_encoders(tmp_path, "last")


def test_interrupted_checkpoint_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"image_encoder": {}, "audio_encoder": {}, "epoch": 1})

    class DiskFull(OSError):
        pass

    def failing_save(obj: object, f: object) -> None:
        f.write(b"partial")  # type: ignore[attr-defined]
        raise DiskFull(28, "No space left on device")

    original = torch.save
    torch.save = failing_save  # type: ignore[assignment]
    try:
        with pytest.raises(DiskFullError, match=rf"^{tmp_path}: the disk is full \(writing last.pt needs ") as info:
            save_checkpoint(path, {"image_encoder": {}, "audio_encoder": {}, "epoch": 2})
        assert isinstance(info.value.__cause__, DiskFull)
    finally:
        torch.save = original
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_damaged_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    path.write_bytes(b"\x80\x02not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be loaded") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)
    with pytest.raises(CheckpointError, match="is not a run folder"):
        load_encoders(tmp_path / "nowhere")
