"""Embedding whole datasets with trained encoders: images by their evaluation view, clips by the
front-end's chunk rule (the mean of the chunk embeddings), as the app and the model bundle do."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.audio import FrontEndConfig, chunk_log_mel
from engine.augment import center_views
from engine.models import AudioEncoder, ImageEncoder
from engine.progress import Job


@torch.no_grad()
def embed_images(encoder: ImageEncoder, regions: torch.Tensor, size: int, eval_scale: float,
                 device: torch.device) -> torch.Tensor:
    """Embed uint8 regions (N, 3, S, S) by their centre view. Returns (N, D) float32 on the CPU."""
    x = center_views(regions.to(device, non_blocking=True), size, eval_scale)
    return encoder(x).float().cpu()


@torch.no_grad()
def eval_view_uint8(regions: torch.Tensor, size: int, eval_scale: float) -> np.ndarray:
    """The evaluation view of uint8 regions (N, 3, S, S) as a model bundle's image input: the same
    :func:`engine.augment.center_views` as :func:`embed_images`, rounded to 8 bits, (N, size, size, 3)
    uint8 RGB. (The rounding changes a pixel by at most half a level.)"""
    views = center_views(regions, size, eval_scale)
    return np.ascontiguousarray((views * 255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())


@torch.no_grad()
def embed_clips(encoder: AudioEncoder, mels: Sequence[np.ndarray | torch.Tensor], front_end: FrontEndConfig,
                device: torch.device, max_batch: int = 128) -> torch.Tensor:
    """Embed whole clips by the chunk rule: each (n_mels, T) log-mel is cut by
    :func:`engine.audio.chunk_log_mel`, its chunks are embedded, and their embeddings averaged.

    Chunks of equal length from all clips are batched together. Returns (N, D) float32 on the CPU.
    """
    groups: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
    counts = np.zeros(len(mels), np.int64)
    for i, mel in enumerate(mels):
        mel = mel.numpy() if isinstance(mel, torch.Tensor) else np.asarray(mel)
        chunks = chunk_log_mel(mel.reshape(mel.shape[-2], mel.shape[-1]), front_end)
        counts[i] = len(chunks)
        for chunk in chunks:
            groups[chunk.shape[-1]].append((i, chunk))
    sums: torch.Tensor | None = None
    for items in groups.values():
        for start in range(0, len(items), max_batch):
            part = items[start:start + max_batch]
            x = torch.from_numpy(np.stack([c for _, c in part])).to(device)
            z = encoder(x).float().cpu()
            if sums is None:
                sums = torch.zeros(len(mels), z.shape[1])
            sums.index_add_(0, torch.tensor([i for i, _ in part]), z)
    if sums is None:
        return torch.zeros(0, 0)
    return sums / torch.from_numpy(counts).clamp_min(1).float()[:, None]


@dataclass
class EmbeddedSplit:
    """Embeddings of the readable pairs of a split, in loader order."""

    image: torch.Tensor          # (N, D)
    audio: torch.Tensor          # (N, D)
    lon: np.ndarray
    lat: np.ndarray
    keys: list[str]
    skipped: list[tuple[str, str, str]]  # (key, reason, message) of unreadable pairs


@torch.no_grad()
def embed_loader(image_encoder: ImageEncoder, audio_encoder: AudioEncoder, loader: Iterable[dict[str, Any]],
                 image_size: int, eval_scale: float, front_end: FrontEndConfig, device: torch.device,
                 job: Job | None = None, total: int | None = None) -> EmbeddedSplit:
    """Embed every batch of a whole-clip loader (see :func:`engine.train.data.clip_loader`).

    ``job`` is checked for cancellation between batches; progress is reported only when ``total``
    (the number of pairs) is given.
    """
    images, audios, lon, lat, keys, skipped = [], [], [], [], [], []
    done = 0
    for batch in loader:
        if job is not None:
            job.check()
        skipped += batch["skipped"]
        if batch["size"]:
            images.append(embed_images(image_encoder, batch["image"], image_size, eval_scale, device))
            clips = batch["audio"] if isinstance(batch["audio"], list) else list(batch["audio"])
            audios.append(embed_clips(audio_encoder, clips, front_end, device))
            lon.append(batch["lon"].numpy())
            lat.append(batch["lat"].numpy())
            keys += batch["key"]
        done += batch["size"] + len(batch["skipped"])
        if job is not None and total is not None:
            job.report(done, total, "embedding")
    if not images:
        return EmbeddedSplit(torch.zeros(0, 0), torch.zeros(0, 0), np.zeros(0), np.zeros(0), [], skipped)
    return EmbeddedSplit(torch.cat(images), torch.cat(audios), np.concatenate(lon), np.concatenate(lat), keys,
                         skipped)
