"""Multi-GPU training with DDP: process-group set-up from ``torchrun``.

``torchrun --nproc-per-node N -m engine.cli train --shards SHARDS ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`init_distributed` reads them (NCCL on CUDA, gloo on CPU).

The loss owns the gather (:class:`engine.losses.PairLoss` with :func:`engine.losses.all_gather_with_grad`):
both embedding batches are all-gathered with gradient, so the batch-all triplet loss compares every image
with every sound of the *global* batch. The gather's backward hands each rank the gradient that every
rank's (identical) loss sends to its rows, summed; DDP then averages parameter gradients over the N ranks,
which is exactly the gradient of one process's loss on the concatenated batch (tests/engine/
test_distributed.py checks this with 2 gloo processes).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

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


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
