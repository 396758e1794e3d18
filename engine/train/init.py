"""Fine-tuning: starting both encoders from another run (``train --init RUN``) and freezing parts of them.

The new run takes the initial run's ``model`` and ``front_end`` sections (the weights only fit that model,
and the audio encoder only understands that front-end) and, for recorder campaigns, its ground size
(``data.ground_size_m``: the scale the image encoder learnt). A preset whose ``model`` section says
otherwise is refused. The weights come from ``best.pt`` (else ``last.pt``), loaded with
``weights_only=True``; ``config.json`` records where they came from: ``init`` = ``{"run", "checkpoint",
"path", "sha256", "epoch", "step"}``, the sha256 of the checkpoint file as it was read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

from engine.checkpoint import load_checkpoint, read_run_config
from engine.config.run import RunConfig
from engine.errors import CheckpointError, ConfigError
from engine.models import ModelConfig

log = logging.getLogger(__name__)


def init_checkpoint(run_dir: Path) -> tuple[str, Path]:
    """(``best`` or ``last``, its path) of a run to start from: best.pt, else last.pt."""
    for which in ("best", "last"):
        path = run_dir / "checkpoints" / f"{which}.pt"
        if path.is_file():
            return which, path
    raise CheckpointError(f"--init {run_dir}", "has no checkpoints/best.pt or last.pt", "name a run folder made by 'train'")


def apply_init(cfg: RunConfig, preset: dict[str, Any], run_dir: Path) -> RunConfig:
    """The preset's config with the initial run's model, front-end and ground size, and ``init`` set.

    Args:
        cfg: the resolved preset (plus options).
        preset: the preset's raw sections (to tell a ``model`` section it states from the defaults).
        run_dir: the run to start from.
    Raises:
        ConfigError: the preset states a model that differs from the run's.
        CheckpointError: not a run folder, or no checkpoint.
    """
    run_dir = Path(run_dir).resolve()
    config = read_run_config(run_dir)
    model = ModelConfig.from_dict(config["model"])
    stated = preset.get("model") or {}
    if stated:
        differs = {k: (v, getattr(model, k)) for k, v in ModelConfig.from_dict(stated).to_dict().items()
                   if k in stated and v != getattr(model, k)}
        if differs:
            shown = ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in sorted(differs.items()))
            raise ConfigError(f"--preset {cfg.preset}", f"its model section disagrees with --init {run_dir} ({shown})",
                              "use a preset without a model section (e.g. field-finetune) or one matching the run")
    which, path = init_checkpoint(run_dir)
    new = dataclasses.replace(cfg, model=model, front_end=type(cfg.front_end).from_dict(config["front_end"]),
                              init={"run": str(run_dir), "checkpoint": which, "path": str(path)})
    ground = (config.get("data") or {}).get("ground_size_m")
    if ground:  # the scale the image encoder learnt (an explicit --ground-size-m is applied after this)
        new = new.replace("data", ground_size_m=float(ground))
    return new


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_init_weights(image_encoder: torch.nn.Module, audio_encoder: torch.nn.Module,
                      init: dict[str, Any]) -> dict[str, Any]:
    """Load ``init['path']`` into both encoders; returns ``init`` with the file's sha256, epoch and step.

    Raises:
        CheckpointError: an unreadable checkpoint or one that does not fit the model.
    """
    path = Path(init["path"])
    sha = file_sha256(path)
    payload = load_checkpoint(path)  # weights_only=True
    try:
        image_encoder.load_state_dict(payload["image_encoder"])
        audio_encoder.load_state_dict(payload["audio_encoder"])
    except RuntimeError as err:
        raise CheckpointError(path, f"does not fit the model ({str(err).splitlines()[0]})",
                              "the run folder mixes files of different runs") from None
    log.info("encoders start from %s (sha256 %s, epoch %s)", path, sha[:12], payload.get("epoch"))
    return {**init, "sha256": sha, "epoch": payload.get("epoch"), "step": payload.get("step")}


def _backbone_parts(encoder: torch.nn.Module, trainable: str) -> tuple[list[torch.nn.Module], list[torch.nn.Module]]:
    """(frozen modules, trainable modules) of an encoder's backbone for a ``trainable`` setting."""
    backbone = encoder.backbone
    if trainable == "all":
        return [], [backbone]
    if trainable == "head":
        return [backbone], []
    frozen = [m for name, m in backbone.named_children() if name != "layer4"]
    return frozen, [backbone.layer4]


def set_trainable(encoders: list[torch.nn.Module], trainable: str) -> int:
    """Freeze the backbone parts ``trainable`` leaves out (no gradients, batch-norm statistics kept: the
    frozen modules are put in eval mode; call after ``.train()``). Returns the number of trainable tensors."""
    count = 0
    for encoder in encoders:
        frozen, free = _backbone_parts(encoder, trainable)
        for module in frozen:
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)
        for module in free:
            for p in module.parameters():
                p.requires_grad_(True)
        for p in encoder.head.parameters():
            p.requires_grad_(True)
        count += sum(1 for p in encoder.parameters() if p.requires_grad)
    return count


def trainable_at(epoch: int, freeze_epochs: int, trainable: str) -> str:
    """What trains in epoch ``epoch`` (1-based): only the heads during the first ``freeze_epochs``."""
    return "head" if epoch <= freeze_epochs else trainable
