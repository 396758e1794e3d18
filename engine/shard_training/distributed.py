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

import gc
import logging
import os
import time
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


# How long the main thread lets go of the GIL before the process group is destroyed (see below).
_WORKER_DRAIN_S = 0.05


def cleanup_distributed(ctx: DistContext | None = None, synchronize: bool = False) -> None:
    """Leave the process group in an order that cannot deadlock at exit.

    The caller first drops its DDP wrapper (and with it the reducer, which holds the process group);
    here the last cycles are collected, the ranks meet at a barrier when ``synchronize`` (a clean end:
    every rank gets here; after an error a peer may be gone, so no barrier), the GIL is released for a
    moment, and only then is the group destroyed. Why: when the reducer was the last owner of a gloo
    group, the group's destructor ran inside the reducer's (holding the GIL) and joined gloo's worker
    threads while one of them waited for the GIL to drop a finished work's tensors: a process that never
    exited (issue 12). Destroying the group from here, with no work in flight and the workers given
    the GIL to finish, is the same on NCCL.

    Args:
        ctx: this process's context (for the barrier's device on NCCL).
        synchronize: meet the other ranks at a barrier first.
    """
    gc.collect()
    if not (dist.is_available() and dist.is_initialized()):
        return
    if synchronize:
        if ctx is not None and ctx.backend == "nccl":
            dist.barrier(device_ids=[ctx.local_rank])
        else:
            dist.barrier()
    time.sleep(_WORKER_DRAIN_S)  # sleeping releases the GIL: gloo's workers drop their last work objects
    dist.destroy_process_group()
