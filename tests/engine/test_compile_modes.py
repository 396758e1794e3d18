"""The compile switches of the shard-training step: the loss is unchanged whatever is compiled, and CUDA-graph
modes fall back cleanly where there is no CUDA (the CPU runs eagerly)."""

from __future__ import annotations

import pytest
import torch

from engine.losses import LossConfig, PairLoss
from engine.models import AudioEncoder, ImageEncoder, ModelConfig
from engine.shard_training.compute import ComputeConfig, PairModel, TrainStep, prepare_model

MODEL = ModelConfig(image_arch="resnet18", audio_arch="resnet18", image_width=8, audio_width=8, embed_dim=16,
                    image_size=32)


def _step(cfg: ComputeConfig) -> tuple[TrainStep, PairModel]:
    torch.manual_seed(0)
    run, plain = prepare_model(PairModel(ImageEncoder(MODEL), AudioEncoder(MODEL)), torch.device("cpu"), cfg)
    opt = torch.optim.Adam(plain.parameters(), lr=1e-3)
    return TrainStep(run, PairLoss(LossConfig()), opt, cfg, torch.device("cpu")), plain


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(6, 3, 32, 32, generator=g), torch.randn(6, 1, 16, 40, generator=g)) for _ in range(3)]


@pytest.mark.parametrize("mode,scope", [("reduce-overhead", "model"), ("reduce-overhead", "step"),
                                        (None, "step")])
def test_compile_switches_without_cuda_run_eagerly_with_the_same_losses(mode: str | None, scope: str) -> None:
    eager, eager_model = _step(ComputeConfig())
    switched, switched_model = _step(ComputeConfig(compile=True, compile_mode=mode, compile_scope=scope))
    assert switched._forward_loss == switched._eager_forward_loss and not switched._mark_step  # no CPU compile
    for images, mels in _batches():
        a, b = eager(images, mels), switched(images, mels)
        assert torch.equal(a["loss"], b["loss"])
    for p, q in zip(eager_model.parameters(), switched_model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_unknown_compile_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="compile_mode"):
        ComputeConfig(compile=True, compile_mode="fastest")
    with pytest.raises(ValueError, match="compile_scope"):
        ComputeConfig(compile=True, compile_scope="everything")
    assert ComputeConfig(compile=True, compile_mode="reduce-overhead").cuda_graphs
    assert not ComputeConfig(compile=True).cuda_graphs
