"""DDP with the engine's loss (which owns the all-gather): 2 gloo processes give the loss and gradients of
one process on the concatenated batch. Also the gather faked in-process, and the device meter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from engine.config.loss import LossConfig
from engine.config.model import ModelConfig
from engine.losses import PairLoss, all_gather_with_grad, batch_all_triplet_loss
from engine.models import AudioEncoder, ImageEncoder
from engine.shard_training.compute import (
    ComputeConfig,
    DeviceMeter,
    PairModel,
    TrainStep,
    in_batch_recall_at_1,
    prepare_model,
)

WORLD, PER_RANK = 2, 4


def _model() -> PairModel:
    torch.manual_seed(0)
    cfg = ModelConfig(image_width=8, audio_width=8, embed_dim=16, image_size=32)
    model = PairModel(ImageEncoder(cfg), AudioEncoder(cfg))
    return model.eval()  # BatchNorm statistics are per rank under DDP; eval mode compares like with like


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(WORLD * PER_RANK, 3, 32, 32, generator=g), torch.randn(WORLD * PER_RANK, 1, 16, 24, generator=g)


def _step(model: PairModel, images: torch.Tensor, mels: torch.Tensor, ddp: bool) -> dict:
    run, plain = prepare_model(model, torch.device("cpu"), ComputeConfig(), ddp=ddp)
    opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    gather = all_gather_with_grad if ddp else None
    step = TrainStep(run, PairLoss(LossConfig(), gather), opt, ComputeConfig(), torch.device("cpu"))
    metrics = step(images, mels)
    return {"loss": metrics["loss"], "grads": {n: p.grad.clone() for n, p in plain.named_parameters()},
            "params": {n: p.detach().clone() for n, p in plain.named_parameters()}}


def _ddp_worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        images, mels = _batch()
        mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        torch.save(_step(_model(), images[mine], mels[mine], ddp=True), os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process_on_the_whole_batch(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=WORLD, join=True)
    images, mels = _batch()
    single = _step(_model(), images, mels, ddp=False)
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"{rank}.pt", weights_only=True)
        torch.testing.assert_close(got["loss"], single["loss"], rtol=1e-5, atol=1e-6)
        for name, grad in single["grads"].items():
            torch.testing.assert_close(got["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)
            torch.testing.assert_close(got["params"][name], single["params"][name], rtol=1e-5, atol=1e-6)
    assert float(single["loss"]) > 0


def test_gathered_loss_with_a_faked_collective() -> None:
    """The loss sees the other rank's rows, and only this rank's rows receive gradient from it."""
    torch.manual_seed(0)
    other_i, other_a = torch.randn(3, 5), torch.randn(3, 5)
    mine_i = torch.randn(3, 5, requires_grad=True)
    mine_a = torch.randn(3, 5, requires_grad=True)
    fake = {id(mine_i): other_i, id(mine_a): other_a}
    loss = PairLoss(LossConfig(), gather=lambda x: torch.cat([fake[id(x)], x]))(mine_i, mine_a)
    full_i = torch.cat([other_i, mine_i.detach()]).requires_grad_()
    full_a = torch.cat([other_a, mine_a.detach()]).requires_grad_()
    ref = batch_all_triplet_loss(full_i, full_a)
    ref.backward()
    loss.backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(mine_i.grad, full_i.grad[3:])
    torch.testing.assert_close(mine_a.grad, full_a.grad[3:])


def test_gather_is_the_identity_without_a_process_group() -> None:
    x = torch.randn(4, 3)
    assert all_gather_with_grad(x) is x


def test_device_meter_means_and_in_batch_recall() -> None:
    meter = DeviceMeter()
    meter.add({"loss": torch.tensor(1.0), "r": torch.tensor(0.5)})
    meter.add({"loss": torch.tensor(3.0), "r": torch.tensor(0.0)})
    assert meter.read() == {"loss": 2.0, "r": 0.25} and meter.read() == {}
    image = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    audio = torch.tensor([[0.1, 0.0], [0.2, 0.0], [0.0, 9.0]])
    r_ia, r_ai = in_batch_recall_at_1(image, audio)
    # image->audio: img0 -> a0 (0.1) ok; img1 -> a1 (9.8) ok; img2 -> a2 (1.0) ok  => 1.0
    # audio->image: a0 -> img0 ok; a1 -> img0 (0.2 < 9.8) wrong; a2 -> img2 ok      => 2/3
    assert float(r_ia) == 1.0 and float(r_ai) == pytest.approx(2 / 3)
