"""The onnxruntime-vs-PyTorch check of an export, on real inputs.

The inputs are the run's own data when it is on this machine (decoded as ``train`` and ``evaluate``
decode it), else realistic synthetic images, plus any audio files given; :func:`measure_parity` returns
the largest relative differences the exporter compares with its tolerance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.audio import FrontEndConfig, chunk_log_mel, samples_log_mel
from engine.checkpoint import LoadedRun
from engine.config.run import RunConfig
from engine.data.source import PairSource, open_source
from engine.errors import UserInputError
from engine.export.onnx import ImageInput

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 1e-4


def run_dataset(config: dict[str, Any]) -> Path | None:
    """The dataset a run was trained on (``dataset.path`` in RUN/config.json, written by ``train``), if it
    is on this machine."""
    path = (config.get("dataset") or {}).get("path")
    if isinstance(path, str) and path and Path(path).exists():
        return Path(path)
    return None


def open_run_source(run: LoadedRun) -> tuple[PairSource, RunConfig] | None:
    """The run's own dataset read as ``train`` read it (its data config, front-end and split rule):
    (:class:`engine.data.source.PairSource`, :class:`engine.config.run.RunConfig`), or None when the
    data is not on this machine or cannot be read any more."""
    from engine.config.run import RunConfig

    path = run_dataset(run.config)
    if path is None:
        return None
    cfg = RunConfig.from_dict(run.config)
    try:
        from engine.campaign import is_campaign

        if is_campaign(path):  # a recorder campaign: its sites' chips and evaluation windows
            from engine.train.campaign_data import open_campaign

            return open_campaign(path, cfg), cfg  # type: ignore[return-value]
        return open_source(path, cfg.data, cfg.front_end), cfg
    except UserInputError as err:
        log.warning("the run's data cannot be read (%s); using synthetic inputs", err)
        return None


def _synthetic_images(n: int, size: int, seed: int) -> np.ndarray:
    """Aerial-like uint8 images: smooth colour fields (fields, water, woods) plus fine texture."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        coarse = rng.uniform(20, 235, (4, 4, 3)).astype(np.float32)
        field_ = np.stack([np.asarray(Image.fromarray(coarse[:, :, c]).resize((size, size), Image.Resampling.BICUBIC))
                           for c in range(3)], axis=2)
        texture = rng.normal(0, 18, (size, size, 3))
        out[i] = np.clip(field_ + texture, 0, 255).astype(np.uint8)
    return out


def _synthetic_log_mels(cfg: FrontEndConfig, seed: int) -> list[np.ndarray]:
    """Normalised log-mels of synthetic clips: band noise with tonal calls, and a clip with a quiet gap."""
    rng = np.random.default_rng(seed)
    rate = cfg.sample_rate
    t = np.arange(int(7.3 * rate)) / rate
    calls = np.sin(2 * np.pi * (2500 + 800 * np.sin(2 * np.pi * 3 * t)) * t) * (np.sin(2 * np.pi * 0.7 * t) > 0.6)
    clips = [0.05 * rng.standard_normal(t.size) + 0.3 * calls,
             np.convolve(rng.standard_normal(int(12.1 * rate)), np.ones(32) / 32, mode="same")]
    clips[1][rate * 4:rate * 5] *= 0.01
    return [samples_log_mel(c.astype(np.float32), rate, cfg, source="synthetic clip") for c in clips]


@dataclass
class ParityInputs:
    images: np.ndarray  # (n, S, S, 3) uint8
    log_mels: list[np.ndarray]  # normalised (n_mels, T)
    description: str


def parity_inputs(run: LoadedRun, audio_files: list[Path], n_images: int = 8, seed: int = 0) -> ParityInputs:
    """Real inputs for the onnxruntime-vs-PyTorch check: the run's own validation pairs (their
    evaluation view and whole log-mels, decoded as ``train`` and ``evaluate`` decode them) when its data
    is on this machine, else synthetic aerial-like images; plus ``audio_files`` (e.g. real field
    recordings) and, when no audio is available, synthetic clips."""
    from engine.audio import file_log_mel
    from engine.embedding import eval_view_uint8

    size, fe = run.model.image_size, run.front_end
    images: list[np.ndarray] = []
    log_mels: list[np.ndarray] = []
    parts = []
    opened = open_run_source(run)
    if opened is not None:
        source, cfg = opened
        order = source.indices("val") + source.indices("train") + source.indices("test")
        for i in order:
            if len(images) >= n_images and len(log_mels) >= 3:
                break
            try:
                if len(images) < n_images:
                    region = torch.from_numpy(np.array(source.image(i))).permute(2, 0, 1)[None]
                    images.append(eval_view_uint8(region, size, cfg.augment.eval_scale)[0])
                if len(log_mels) < 3:
                    log_mels.append(source.log_mel(i))
            except UserInputError as err:
                log.warning("parity inputs: skipping %s", err)
        if images or log_mels:
            parts.append(f"{len(images)} images and {len(log_mels)} recordings of {source.table}")
    n_real = len(images)
    if n_real < n_images:
        images.extend(_synthetic_images(n_images - n_real, size, seed))
        parts.append(f"{n_images - n_real} synthetic images")
    given = []
    for path in audio_files:
        try:
            log_mels.append(file_log_mel(path, fe))
            given.append(Path(path).name)
        except UserInputError as err:
            log.warning("parity inputs: skipping %s", err)
    if given:
        parts.append(f"{len(given)} given recordings ({', '.join(given[:4])}{' ...' if len(given) > 4 else ''})")
    if not log_mels:
        log_mels = _synthetic_log_mels(fe, seed)
        parts.append(f"{len(log_mels)} synthetic clips")
    return ParityInputs(np.stack(images[:n_images]), log_mels, "; ".join(parts))


def relative_difference(result: np.ndarray, reference: np.ndarray) -> float:
    """max |result - reference| / max |reference| (0 when both are zero)."""
    scale = float(np.abs(reference).max())
    return float(np.abs(result - reference).max() / scale) if scale > 0 else float(np.abs(result).max())


def _ort_session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def measure_parity(run: LoadedRun, image_model: Path, audio_model: Path, inputs: ParityInputs) -> dict[str, Any]:
    """Run both encoders in PyTorch and in onnxruntime on ``inputs``; return the relative differences.

    The audio check runs every chunk of every clip (the batch axis) and, to exercise the dynamic time
    axis, each clip's first 301 frames and the whole clip when it is at most two chunks long.
    """
    image_session, audio_session = _ort_session(image_model), _ort_session(audio_model)
    with torch.no_grad():
        torch_img = ImageInput(run.image_encoder)(torch.from_numpy(inputs.images)).numpy()
        ort_img = image_session.run(["embedding"], {"image": inputs.images})[0]
        single = image_session.run(["embedding"], {"image": inputs.images[:1]})[0]
        image_diff = max(relative_difference(ort_img, torch_img), relative_difference(single, torch_img[:1]))
        audio_diff = 0.0
        n_batches = 0
        for mel in inputs.log_mels:
            batches = [chunk_log_mel(mel, run.front_end), mel[None, None, :, :301]]
            if mel.shape[1] <= 2 * run.front_end.chunk_frames:
                batches.append(mel[None, None])
            for batch in batches:
                batch = np.ascontiguousarray(batch, dtype=np.float32)
                ref = run.audio_encoder(torch.from_numpy(batch)).numpy()
                got = audio_session.run(["embedding"], {"log_mel": batch})[0]
                audio_diff = max(audio_diff, relative_difference(got, ref))
                n_batches += 1
    return {"image": {"max_relative_difference": image_diff, "images": int(len(inputs.images))},
            "audio": {"max_relative_difference": audio_diff, "clips": len(inputs.log_mels), "batches": n_batches},
            "inputs": inputs.description}
