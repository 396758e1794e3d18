"""The run folder: its config, atomic checkpoints, and loading the encoders back.

Layout of a run folder (``soundscape-engine train --out RUN``)::

    RUN/config.json          the resolved config: {"format": "soundscape-run", "version": 1,
                             "model", "front_end", "data", "augment", "train" (engine.config.run.RunConfig),
                             "preset", "image_weights", "dataset": {path, layout, kind, audio_source,
                             split_rule, pairs per split, skipped; from shards also "cache": the
                             shards folder}, from shards also "compute"}
    RUN/checkpoints/last.pt  written atomically every epoch (and on Ctrl-C)
    RUN/checkpoints/best.pt  the best validation epoch so far
    RUN/metrics.jsonl        the live log the app plots

A checkpoint is a ``torch.save`` dict of tensors, numbers, strings, lists and dicts only, so it loads
with ``weights_only=True`` (no arbitrary unpickling). Keys: ``image_encoder`` and ``audio_encoder``
(state dicts), ``epoch``, ``step``, ``metrics``, plus the training state (optimiser, scheduler, RNG).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.audio import FrontEndConfig
from engine.config.model import ModelConfig
from engine.errors import CheckpointError, brief
from engine.files import atomic_write_bytes, read_manifest
from engine.models import AudioEncoder, ImageEncoder, build_audio_encoder, build_image_encoder

RUN_FORMAT = "soundscape-run"
RUN_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Save a checkpoint dict atomically (see module docstring for the keys).

    Raises:
        DiskFullError: the disk is full (one line naming the folder and the bytes needed); the previous
            file is intact.
    """
    atomic_write_bytes(Path(path), lambda f: torch.save(payload, f), size_hint=tensor_bytes(payload))


def tensor_bytes(value: Any) -> int:
    """The bytes of all tensors in a nested dict/list (about the size of its checkpoint file)."""
    if isinstance(value, torch.Tensor):
        return value.nelement() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``. Raises :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint not found", "train first, or name an existing run folder")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged file surfaces as many error types
        raise CheckpointError(path, f"cannot be loaded ({type(err).__name__}: {brief(err)})",
                              "the file is damaged; use the other checkpoint (best/last) or retrain") from None
    if not isinstance(payload, dict) or "image_encoder" not in payload or "audio_encoder" not in payload:
        raise CheckpointError(path, "is not a Soundscape Mapper checkpoint", "name a run folder made by 'train'")
    return payload


def write_run_config(run_dir: str | Path, config: dict[str, Any]) -> None:
    """Write RUN/config.json (adds the format tag and version)."""
    data = {"format": RUN_FORMAT, "version": RUN_VERSION, **config}
    atomic_write_bytes(Path(run_dir) / "config.json", lambda f: f.write(json.dumps(data, indent=2).encode()))


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """Read RUN/config.json. Raises :class:`CheckpointError` when missing or not a run."""
    return read_manifest(Path(run_dir) / "config.json", RUN_FORMAT, (RUN_VERSION,), CheckpointError,
                         what="a run folder", make="name a folder made by 'train --out'",
                         redo="restore it, or use a run made by this version of Soundscape Mapper")


@dataclass
class LoadedRun:
    """Encoders (eval mode, CPU) and configs of a trained run."""

    run_dir: Path
    config: dict[str, Any]
    model: ModelConfig
    front_end: FrontEndConfig
    image_encoder: ImageEncoder
    audio_encoder: AudioEncoder
    checkpoint: dict[str, Any]  # epoch, step, metrics (the state dicts are dropped)


def load_encoders(run_dir: str | Path, which: str = "best") -> LoadedRun:
    """Build both encoders from RUN/config.json and load RUN/checkpoints/<which>.pt.

    ``which`` is ``best`` or ``last``; ``best`` falls back to ``last`` when no validation ran.
    """
    run_dir = Path(run_dir)
    if which not in ("best", "last"):
        raise CheckpointError("--checkpoint", f"unknown checkpoint {which!r}", "use 'best' or 'last'")
    config = read_run_config(run_dir)
    model_cfg = ModelConfig.from_dict(config["model"])
    front_end = FrontEndConfig.from_dict(config["front_end"])
    path = run_dir / "checkpoints" / f"{which}.pt"
    if which == "best" and not path.exists() and (run_dir / "checkpoints" / "last.pt").exists():
        path = run_dir / "checkpoints" / "last.pt"
    payload = load_checkpoint(path)
    image, audio = build_image_encoder(model_cfg), build_audio_encoder(model_cfg)
    try:
        image.load_state_dict(payload["image_encoder"])
        audio.load_state_dict(payload["audio_encoder"])
    except RuntimeError as err:
        raise CheckpointError(path, f"does not match the model in config.json ({str(err).splitlines()[0]})",
                              "the run folder mixes files of different runs") from None
    image.eval()
    audio.eval()
    info = {k: v for k, v in payload.items() if k in ("epoch", "step", "metrics")}
    return LoadedRun(run_dir, config, model_cfg, front_end, image, audio, info)
