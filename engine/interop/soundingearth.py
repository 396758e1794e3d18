"""Import the SoundingEarth authors' released checkpoints as a run folder.

Their checkpoints are ``torch.save(model.state_dict())`` of their ``FullModelWrapper``: keys
``img_encoder.module_list.0.<resnet key>`` and ``snd_encoder.module_list.0.<resnet key>``, where the ResNet is
torchvision's with a 32-channel stem, stages of 64/182/256/512 planes and a 1x1 convolution ``fc`` to 128
dimensions (``engine.models`` builds it as ``soundingearth-resnet18`` / ``-resnet50``). The image encoder
applies ``fc`` to the feature map and then averages; ours averages and then applies the same weights as a
linear head: both maps are linear, so the result is the same up to float rounding.

The file is loaded with ``weights_only=True`` (no code runs), its layout is detected from the keys, and
every key, shape and type is checked before anything is written: a checkpoint of any other shape is
refused with one line naming the first key that does not fit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.augment import AugmentConfig
from engine.checkpoint import save_checkpoint, write_run_config
from engine.config.data import DataConfig
from engine.config.run import RunConfig
from engine.errors import CheckpointError, ConfigError
from engine.interop.conventions import (
    AUTHORS_REPOSITORY,
    IMAGE_SIZE,
    SOUNDINGEARTH_IMAGE_M,
    conventions,
    soundingearth_front_end,
)
from engine.models import ModelConfig, build_audio_encoder, build_image_encoder

log = logging.getLogger(__name__)

IMAGE_PREFIX = "img_encoder.module_list.0."
AUDIO_PREFIX = "snd_encoder.module_list.0."
ARCH_NAMES = {"resnet18": "soundingearth-resnet18", "resnet50": "soundingearth-resnet50"}
PRESET = "soundingearth-authors"
LAYOUT = "soundingearth-fullmodelwrapper"


class WeightsImportError(CheckpointError):
    """A file that is not one of the authors' checkpoints (one line naming the key or the problem)."""


@dataclass(frozen=True)
class Layout:
    """What a checkpoint holds: the image and sound encoder architectures (``resnet18``/``resnet50``)."""

    image: str
    audio: str

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig(image_arch=ARCH_NAMES[self.image], audio_arch=ARCH_NAMES[self.audio])


@dataclass(frozen=True)
class ImportResult:
    run_dir: Path
    layout: Layout
    sha256: str
    keys: int

    def describe(self) -> str:
        return (f"{self.run_dir}: the SoundingEarth authors' {self.layout.image} image and {self.layout.audio} "
                f"sound encoders ({self.keys} tensors, sha256 {self.sha256[:12]}); export it with "
                f"'soundscape-engine export --run {self.run_dir} --out BUNDLE'")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a plain state dict (str -> tensor) with ``weights_only=True``.

    Raises:
        WeightsImportError: no such file, not a PyTorch file, a pickle that needs code to load, or not a dict
            of tensors.
    """
    path = Path(path)
    fix = "give the .pt file of the authors' released weights (torch.save of their model's state_dict)"
    if not path.is_file():
        raise WeightsImportError(path, "file not found" if not path.exists() else "is not a file", fix)
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the message below says what matters
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load raises many types; the message says which case
        text = str(err)
        if any(m in text for m in ("Weights only", "weights_only", "Unsupported global", "Unsupported operand")):
            raise WeightsImportError(path, "is a pickle that is not a plain state dict (loading it would run "
                                     "code)", fix) from None
        raise WeightsImportError(path, f"is not a PyTorch checkpoint ({type(err).__name__})", fix) from None
    if not isinstance(state, dict):
        raise WeightsImportError(path, f"holds a {type(state).__name__}, not a state dict", fix)
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise WeightsImportError(path, f"is not a plain state dict (entry {str(key)[:60]!r} holds a "
                                     f"{type(value).__name__}, not a tensor)", fix)
    return state


def detect_layout(state: dict[str, torch.Tensor], source: str | Path, image_arch: str | None = None) -> Layout:
    """The encoders a checkpoint holds, told from its keys (a bottleneck ``conv3`` means ResNet-50).

    Args:
        state: the state dict.
        source: the file, for messages.
        image_arch: ``resnet18`` or ``resnet50`` to insist on (then a checkpoint of the other one fails
            on its first key that does not fit); None to detect.
    Raises:
        WeightsImportError: a key outside both encoders (the first one is named), or an empty dict.
    """
    if not state:
        raise WeightsImportError(source, "holds an empty state dict", "give the authors' released .pt file")
    for key in state:
        if not key.startswith((IMAGE_PREFIX, AUDIO_PREFIX)):
            raise WeightsImportError(source, f"unexpected key {key!r} (not a SoundingEarth FullModelWrapper state "
                                     f"dict: keys start with {IMAGE_PREFIX!r} or {AUDIO_PREFIX!r})",
                                     "give the authors' released .pt file")
    if image_arch is not None and image_arch not in ARCH_NAMES:
        raise ConfigError("--image-arch", f"unknown value {image_arch!r}", f"use one of {', '.join(ARCH_NAMES)}")

    def arch(prefix: str) -> str:
        return "resnet50" if f"{prefix}layer1.0.conv3.weight" in state else "resnet18"

    return Layout(image=image_arch or arch(IMAGE_PREFIX), audio=arch(AUDIO_PREFIX))


def _expected(encoder: torch.nn.Module, prefix: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Their key -> (our key, their shape) for one encoder."""
    out = {}
    for ours, tensor in encoder.state_dict().items():
        if ours.startswith("backbone."):
            out[prefix + ours[len("backbone."):]] = (ours, tuple(tensor.shape))
        elif ours == "head.weight":
            out[prefix + "fc.weight"] = (ours, (*tensor.shape, 1, 1))
        elif ours == "head.bias":
            out[prefix + "fc.bias"] = (ours, tuple(tensor.shape))
        else:  # pragma: no cover - the encoders hold only a backbone and a head
            raise AssertionError(f"unmapped encoder key {ours}")
    return out


def convert(state: dict[str, torch.Tensor], layout: Layout, source: str | Path
            ) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Build our encoders for ``layout`` and load the checkpoint into them (eval mode).

    Raises:
        WeightsImportError: the first unexpected key, the first missing key, a wrong shape or a wrong type.
    """
    cfg = layout.model_config
    image, audio = build_image_encoder(cfg), build_audio_encoder(cfg)
    expected = {**_expected(image, IMAGE_PREFIX), **_expected(audio, AUDIO_PREFIX)}
    what = f"a SoundingEarth {layout.image} image / {layout.audio} sound checkpoint"
    fix = "give the authors' released .pt file unchanged (or the right --image-arch)"
    for key in state:
        if key not in expected:
            raise WeightsImportError(source, f"unexpected key {key!r} for {what}", fix)
    for key in expected:
        if key not in state:
            raise WeightsImportError(source, f"missing key {key!r} for {what}", fix)
    converted: dict[str, dict[str, torch.Tensor]] = {"image": {}, "audio": {}}
    for key, (ours, shape) in expected.items():
        value = state[key]
        if tuple(value.shape) != shape:
            raise WeightsImportError(source, f"key {key!r} has shape {list(value.shape)}, {what} has {list(shape)}", fix)
        if ours.endswith("num_batches_tracked"):
            if value.is_floating_point() or value.is_complex():
                raise WeightsImportError(source, f"key {key!r} is {value.dtype}, an integer counter was expected", fix)
            value = value.to(torch.int64)
        elif not value.is_floating_point():
            raise WeightsImportError(source, f"key {key!r} is {value.dtype}, floating-point weights were expected", fix)
        else:
            value = value.to(torch.float32)
        if ours == "head.weight":
            value = value.reshape(shape[:2])
        converted["image" if key.startswith(IMAGE_PREFIX) else "audio"][ours] = value
    image.load_state_dict(converted["image"], strict=True)
    audio.load_state_dict(converted["audio"], strict=True)
    image.eval()
    audio.eval()
    return image, audio


def authors_state_dict(image: torch.nn.Module, audio: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our encoders' weights under the authors' keys and shapes (the inverse of :func:`convert`), e.g. to
    make checkpoints of their layout for benchmarks."""
    state: dict[str, torch.Tensor] = {}
    for encoder, prefix in ((image, IMAGE_PREFIX), (audio, AUDIO_PREFIX)):
        ours_state = encoder.state_dict()
        for theirs, (ours, shape) in _expected(encoder, prefix).items():
            state[theirs] = ours_state[ours].detach().clone().reshape(shape)
    return state


def sha256_of(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def run_config(layout: Layout, image_size: int) -> RunConfig:
    """The imported run's config: their architectures, their input conventions, the whole image as the view."""
    model = ModelConfig(image_arch=ARCH_NAMES[layout.image], audio_arch=ARCH_NAMES[layout.audio],
                        image_size=image_size)
    # The authors trained on whole images: the view is the whole image (region 1, eval scale 1).
    data = DataConfig(audio_source="auto", split_rule="auto", image_region=1.0, stored_size=max(image_size, 16))
    augment = AugmentConfig(eval_scale=1.0)
    return RunConfig(model=model, front_end=soundingearth_front_end(), data=data, augment=augment, preset=PRESET)


def import_checkpoint(checkpoint: str | Path, out: str | Path, image_arch: str | None = None,
                      image_size: int = IMAGE_SIZE) -> ImportResult:
    """Check and convert an authors' checkpoint, and write it as a run folder.

    The run folder is a normal one (``evaluate``, ``export``, ``downstream --weights`` and ``train --init``
    read it): ``config.json`` (with ``imported``: the file, its sha256, the layout and the input
    conventions) and ``checkpoints/best.pt`` = ``last.pt`` (``image_encoder``, ``audio_encoder``,
    ``epoch`` 0, ``step`` 0, ``metrics`` {}, ``config``, ``imported``; no optimiser state: an imported
    run starts new training with ``train --init``, it cannot be resumed).

    Raises:
        WeightsImportError / CheckpointError: a bad checkpoint; ConfigError: a bad option or ``out`` holding
            other files. Nothing is written then.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}", "already exists and is not an empty folder", "choose a new --out folder")
    state = read_state_dict(checkpoint)
    layout = detect_layout(state, checkpoint, image_arch)
    cfg = run_config(layout, image_size)  # validates image_size before the work
    image, audio = convert(state, layout, checkpoint)
    digest = sha256_of(checkpoint)
    config = cfg.to_dict()
    config["data"]["ground_size_m"] = SOUNDINGEARTH_IMAGE_M  # the view is the whole image
    imported = {
        "source": "the SoundingEarth authors' released weights (not trained by Soundscape Mapper)",
        "repository": AUTHORS_REPOSITORY,
        "file": str(checkpoint.resolve()), "sha256": digest, "bytes": checkpoint.stat().st_size,
        "layout": LAYOUT, "image_encoder": layout.image, "sound_encoder": layout.audio, "tensors": len(state),
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "conventions": conventions(cfg.front_end, cfg.model.image_size),
    }
    config["dataset"] = {"path": None, "layout": "soundingearth", "kind": "soundingearth",
                         "audio_source": "spectrogram", "split_rule": "paper", "pairs": None,
                         "note": "trained by the authors on SoundingEarth; the data is not on this machine"}
    config["imported"] = imported
    payload = {"image_encoder": image.state_dict(), "audio_encoder": audio.state_dict(), "epoch": 0, "step": 0,
               "metrics": {}, "config": config, "imported": {k: v for k, v in imported.items() if k != "conventions"}}
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "checkpoints").mkdir(parents=True)
        save_checkpoint(tmp / "checkpoints" / "last.pt", payload)
        save_checkpoint(tmp / "checkpoints" / "best.pt", payload)
        write_run_config(tmp, config)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("imported %s (%s image, %s sound) into %s", checkpoint, layout.image, layout.audio, out)
    return ImportResult(out, layout, digest, len(state))
