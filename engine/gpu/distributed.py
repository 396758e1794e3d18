"""Multi-GPU training with DDP: process-group set-up from ``torchrun``, and a loss that sees the global batch.

``torchrun --nproc-per-node N -m engine.cli train ...`` starts N processes with ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK`` set; :func:`init_distributed` reads them (NCCL on CUDA, gloo on CPU).

The loss owns the gather (as in open_clip): :class:`GatheredLoss` all-gathers both embedding batches with
gradient, so the batch-all triplet loss compares every image with every sound of the *global* batch.
Backward of the gather sums the gradient that every rank's (identical) loss sends to this rank's rows;
DDP then averages parameter gradients over the N ranks, which gives exactly the gradient of the loss of
one process on the concatenated batch. The gather function is a parameter, so tests can fake it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)

GatherFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, its device, and whether it writes files."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes logs and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group when started by torchrun (else a single-process context).

    Args:
        device: ``auto`` (CUDA when available), ``cuda`` or ``cpu``; under torchrun each rank takes GPU
            ``LOCAL_RANK``.

    Raises:
        ConfigError: ``cuda`` asked for without a GPU, or fewer GPUs than processes on this node.
    """
    from engine.errors import ConfigError

    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError("--device", "CUDA was asked for but no GPU is available", "use --device cpu")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world <= 1:
        dev = torch.device(device if device not in ("auto",) else ("cuda" if use_cuda else "cpu"))
        return DistContext(0, 1, 0, dev, None)
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise ConfigError("--nproc-per-node", f"process {local} has no GPU ({torch.cuda.device_count()} "
                              "visible)", "start at most one process per GPU")
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=dev if use_cuda else None)
    log.info("rank %d of %d on %s (%s)", rank, world, dev, backend)
    return DistContext(rank, world, local, dev, backend)


class _AllGatherWithGrad(torch.autograd.Function):
    """Concatenate every rank's (n, d) tensor into (world * n, d); backward returns this rank's rows of
    the gradient summed over ranks."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.n = rank, x.shape[0]
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All ranks' batches concatenated in rank order, differentiable; ``x`` itself when not distributed.

    Every rank must pass the same shape (the input pipeline keeps batch sizes equal).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _AllGatherWithGrad.apply(x)


class GatheredLoss(nn.Module):
    """A pair loss evaluated on the global batch: gathers image and audio embeddings, then ``loss_fn``.

    Args:
        loss_fn: ``loss_fn(image_emb, audio_emb) -> scalar`` (e.g. ``engine.losses.batch_all_triplet_loss``).
        gather: the differentiable gather; :func:`all_gather_with_grad` by default, a fake in tests.
    """

    def __init__(self, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 gather: GatherFn = all_gather_with_grad) -> None:
        super().__init__()
        self.loss_fn = loss_fn
        self.gather = gather

    def forward(self, image_emb: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.gather(image_emb), self.gather(audio_emb))


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
