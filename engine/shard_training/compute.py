"""The compute side of a GPU training step: bf16 autocast, channels_last, torch.compile, DDP, and metrics
accumulated on the device so that no step waits for the host.

:class:`PairModel` holds both encoders so that one DDP wrapper (one gradient all-reduce schedule) and one
``torch.compile`` call cover them. :class:`TrainStep` runs forward (under autocast), the loss in float32,
backward and the optimiser step; it returns device tensors only. :class:`DeviceMeter` sums them on the
device and is read (one synchronisation) every N steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComputeConfig:
    """Args:
        bf16: autocast the encoders to bfloat16 (CUDA; on CPU also allowed, for tests).
        channels_last: NHWC memory format for the encoders and their inputs (CUDA only; ignored on CPU).
        compile: ``torch.compile`` the encoder pair (CUDA only unless ``compile_on_cpu``).
        compile_mode: passed to torch.compile (None: default; ``reduce-overhead``: CUDA graphs, so a step is
            a few graph launches instead of hundreds of kernel launches from the host; "max-autotune"
            compiles for minutes).
        compile_scope: ``model`` compiles the encoder pair; ``step`` compiles the forward pass and the loss
            as one graph (fewer launches; the loss's all-gather under DDP stays a graph break).
        sync_bn: BatchNorm statistics over all ranks (CUDA DDP only); default per rank, as DDP does.
    """

    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None
    compile_scope: str = "model"
    compile_on_cpu: bool = False
    sync_bn: bool = False

    def __post_init__(self) -> None:
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, not {self.compile_mode!r}")
        if self.compile_scope not in ("model", "step"):
            raise ValueError(f"compile_scope must be 'model' or 'step', not {self.compile_scope!r}")

    @property
    def cuda_graphs(self) -> bool:
        """Whether compiled graphs are replayed as CUDA graphs (their outputs are reused by the next step)."""
        return self.compile and self.compile_mode in ("reduce-overhead", "max-autotune")


COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class PairModel(nn.Module):
    """The image and audio encoders as one module: ``forward(images, mels) -> (image_emb, audio_emb)``."""

    def __init__(self, image_encoder: nn.Module, audio_encoder: nn.Module) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.audio_encoder = audio_encoder

    def forward(self, images: torch.Tensor, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image_encoder(images), self.audio_encoder(mels)


def prepare_model(model: PairModel, device: torch.device, cfg: ComputeConfig,
                  ddp: bool = False) -> tuple[nn.Module, PairModel]:
    """Move, format, wrap and compile the pair for training.

    Returns:
        (the module to call in the step, the plain PairModel whose state dict is saved in checkpoints).
    """
    cuda = device.type == "cuda"
    if ddp and cfg.sync_bn and cuda:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[assignment]
    model.to(device)
    if cfg.channels_last and cuda:
        model.to(memory_format=torch.channels_last)
    run: nn.Module = model
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        run = DistributedDataParallel(model, device_ids=[device.index] if cuda else None,
                                      broadcast_buffers=False, gradient_as_bucket_view=True)
    if cfg.compile and cfg.compile_scope == "model" and (cuda or cfg.compile_on_cpu):
        run = torch.compile(run, mode=cfg.compile_mode, dynamic=False)  # type: ignore[assignment]
    elif cfg.compile and not (cuda or cfg.compile_on_cpu):
        log.info("torch.compile is for CUDA devices; running eagerly on %s", device)
    return run, model


def in_batch_recall_at_1(image_emb: torch.Tensor, audio_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fraction of images whose nearest sound is their partner, and the reverse (device tensors)."""
    d = torch.cdist(image_emb.float(), audio_emb.float())
    target = torch.arange(d.shape[0], device=d.device)
    return (d.argmin(1) == target).float().mean(), (d.argmin(0) == target).float().mean()


class TrainStep:
    """One optimisation step without host synchronisation.

    Args:
        model: the module from :func:`prepare_model` (plain, DDP-wrapped and/or compiled).
        loss: ``loss(image_emb, audio_emb) -> scalar``, e.g. a :class:`engine.shard_training.distributed.GatheredLoss`.
        optimizer: over the model's parameters.
        cfg: autocast switch.
        device: the device the batch lives on.
        scheduler: stepped after each optimiser step (a LambdaLR sets Python floats: no synchronisation).
        grad_clip: clip the global gradient norm to this (0: off).
    """

    def __init__(self, model: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 optimizer: torch.optim.Optimizer, cfg: ComputeConfig, device: torch.device,
                 scheduler: Any = None, grad_clip: float = 0.0) -> None:
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.cfg = cfg
        self.device = device
        self.scheduler = scheduler
        self.grad_clip = grad_clip
        compiles = cfg.compile and (device.type == "cuda" or cfg.compile_on_cpu)
        self._forward_loss: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]] = (
            torch.compile(self._eager_forward_loss, mode=cfg.compile_mode, dynamic=False)
            if compiles and cfg.compile_scope == "step" else self._eager_forward_loss)
        # CUDA graph replays reuse their output buffers: each step is marked so that the previous step's
        # outputs (already summed into the meter) may be overwritten.
        self._mark_step = compiles and cfg.cuda_graphs

    def _eager_forward_loss(self, images: torch.Tensor, mels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            image_emb, audio_emb = self.model(images, mels)
        image_emb, audio_emb = image_emb.float(), audio_emb.float()  # the loss in float32, as on CPU
        return self.loss(image_emb, audio_emb), image_emb, audio_emb

    def forward_loss(self, images: torch.Tensor, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        loss, image_emb, audio_emb = self._forward_loss(images, mels)
        return loss, image_emb, audio_emb

    def __call__(self, images: torch.Tensor, mels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns device scalars: ``loss``, ``r1_image_to_audio``, ``r1_audio_to_image`` (local batch)."""
        if self._mark_step:
            torch.compiler.cudagraph_mark_step_begin()
        loss, image_emb, audio_emb = self.forward_loss(images, mels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:  # clip_grad_norm_ stays on the device (no host read of the norm)
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip, foreach=True)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        with torch.no_grad():
            r1_ia, r1_ai = in_batch_recall_at_1(image_emb.detach(), audio_emb.detach())
        out = {"loss": loss.detach(), "r1_image_to_audio": r1_ia, "r1_audio_to_image": r1_ai}
        if self._mark_step:  # the next replay overwrites the graph's outputs: hand back copies (3 scalars)
            out = {name: value.clone() for name, value in out.items()}
        return out


class DeviceMeter:
    """Sums of device scalars over steps; :meth:`read` synchronises once and resets."""

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            v = value.detach().float()
            if name in self._sums:
                self._sums[name] += v
            else:
                self._sums[name] = v.clone()
        self._count += 1

    @property
    def count(self) -> int:
        return self._count

    def read(self) -> dict[str, float]:
        """Means since the last read (one host synchronisation), then reset. Empty if nothing was added."""
        if not self._count:
            return {}
        names = list(self._sums)
        values = torch.stack([self._sums[n] for n in names]).div_(self._count).tolist()
        self._sums, self._count = {}, 0
        return dict(zip(names, values, strict=True))
