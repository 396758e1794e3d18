"""The nvJPEG path of ``prepare``: batched JPEG decode, crop, downscale and JPEG encode on the GPU.

torchvision's ``decode_jpeg``/``encode_jpeg`` with CUDA tensors run nvJPEG; with ``device="cpu"`` the same
functions run libjpeg-turbo, which is how the tests exercise this module without a GPU. Full-resolution
images are decoded (nvJPEG has no DCT scaling), the central region is cut and reduced by area averaging
for integer factors (antialiased bilinear otherwise), then re-encoded. Audio files are decoded and
resampled on the host in worker processes; their log-mels are computed on the device
(:class:`engine.device_log_mel.DeviceLogMel`, held to the front-end by a parity test) unless ``log_mels`` is
``"workers"`` (the front-end in the worker processes, as the CPU path does). SoundingEarth's spectrogram
JPEGs need no STFT and are decoded in the workers either way. Stages overlap: a thread pool reads the next
shard's images, worker processes decode the audio of the next shards, the GPU codes the current shard's
images and computes its log-mels, and worker processes write finished shards. The encoded regions of a
batch, and a shard's log-mels, each come back to the host in one copy.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
    wait,
)
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.io import encode_jpeg

from engine.device_log_mel import DeviceLogMel, device_log_mels
from engine.errors import ConfigError
from engine.shards.format import ShardGeometry
from engine.shards.jpeg_decode import as_byte_tensor, decode_batch
from engine.shards.plan import (
    PrepareConfig,
    ShardPlan,
    build_shard_from_coded,
    build_shard_from_parts,
    decode_audio,
)

log = logging.getLogger(__name__)


def region_box(width: int, height: int, geometry: ShardGeometry) -> tuple[float, float, float, float]:
    """The central region (left, top, right, bottom) in the pixels of a ``width`` x ``height`` image."""
    side = min(width, height) * geometry.region / geometry.source_size
    cx, cy = width / 2.0, height / 2.0
    return (cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0)


def regions_from_images(images: list[torch.Tensor], geometry: ShardGeometry) -> list[torch.Tensor]:
    """Cut the central region of each (3, H, W) uint8 image and bring it to the stored size (uint8).

    Integer reduction factors use area averaging; others antialiased bilinear resampling. Images of one
    size are processed as one batch.
    """
    out: list[torch.Tensor | None] = [None] * len(images)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, img in enumerate(images):
        left, top, right, _ = region_box(img.shape[2], img.shape[1], geometry)
        groups.setdefault((round(left), round(top), round(right - left)), []).append(i)
    size = geometry.stored
    for (left, top, side), idx in groups.items():
        crops = torch.stack([images[i][:, top:top + side, left:left + side] for i in idx]).float()
        if side == size:
            resized = crops
        elif side % size == 0:
            resized = F.avg_pool2d(crops, kernel_size=side // size)
        else:
            resized = F.interpolate(crops, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        resized = resized.round_().clamp_(0, 255).to(torch.uint8)
        for j, i in enumerate(idx):
            out[i] = resized[j].contiguous()
    return [o for o in out if o is not None]


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _code_images(datas: list[bytes | None], geometry: ShardGeometry, device: torch.device,
                 batch: int) -> list[bytes | str]:
    """Each record's re-encoded region (bytes), or the skip reason (str)."""
    out: list[bytes | str] = ["missing image" if d is None else "" for d in datas]
    present = [i for i, d in enumerate(datas) if d is not None]
    for start in range(0, len(present), batch):
        idx = present[start:start + batch]
        decoded = decode_batch([as_byte_tensor(datas[i]) for i in idx], device)  # type: ignore[arg-type]
        good = [(i, img) for i, img in zip(idx, decoded, strict=True) if img is not None]
        for i, img in zip(idx, decoded, strict=True):
            if img is None:
                out[i] = "unreadable image"
        if good:
            regions = regions_from_images([img for _, img in good], geometry)
            for (i, _), data in zip(good, _to_host(encode_jpeg(regions, quality=geometry.quality)), strict=True):
                out[i] = data
    return out


def _to_host(encoded: list[torch.Tensor]) -> list[bytes]:
    """Encoded JPEGs (1-D uint8 tensors, maybe on the GPU) -> bytes, with one device-to-host copy."""
    if not encoded:
        return []
    whole = torch.cat(encoded).cpu().numpy()
    ends = torch.tensor([t.numel() for t in encoded]).cumsum(0).tolist()
    return [whole[a:b].tobytes() for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def _device_mels(parts: list[tuple[str, np.ndarray] | str], module: DeviceLogMel,
                  device: torch.device) -> list[np.ndarray | str]:
    """Log-mels of a shard's decoded audio: clips go to the device, their log-mels come back in one copy
    (float16, as the shard stores them); ready log-mels and skip reasons pass through."""
    out: list[np.ndarray | str] = [p if isinstance(p, str) else p[1] for p in parts]
    idx = [i for i, p in enumerate(parts) if not isinstance(p, str) and p[0] == "samples"]
    if not idx:
        return out
    clips = [torch.from_numpy(parts[i][1]).to(device, non_blocking=True) for i in idx]  # type: ignore[index]
    mels = device_log_mels(clips, module)
    whole = torch.cat(mels, dim=1).to(torch.float16).cpu().numpy()
    start = 0
    for i, mel in zip(idx, mels, strict=True):
        out[i] = whole[:, start:start + mel.shape[1]]
        start += mel.shape[1]
    return out


def build_shards_cuda(plans: list[ShardPlan], out: Path, cfg: PrepareConfig, device: str | torch.device = "cuda",
                      batch: int = 128, threads: int = 16, processes: int | None = None,
                      log_mels: str = "device") -> Iterator[tuple[ShardPlan, dict[str, Any]]]:
    """Build the given shards with GPU JPEG coding; yields each (plan, sidecar) once written (in the order
    they finish).

    Args:
        plans: shards still to build.
        out: the cache folder.
        cfg: configs (image region and stored size, front-end, JPEG quality).
        device: ``cuda`` (nvJPEG) or ``cpu`` (libjpeg-turbo through torchvision; tests).
        batch: images per batched decode call.
        threads: threads reading the image files.
        processes: processes decoding the audio and writing the shards (None: cores - 1).
        log_mels: ``device`` (the STFT on ``device``) or ``workers`` (the front-end in the processes).

    Raises:
        ConfigError: ``cuda`` without a CUDA device.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--decoder cuda", "no CUDA device is available", "use --decoder cpu")
    if log_mels not in ("device", "workers"):
        raise ValueError(f"log_mels must be 'device' or 'workers', not {log_mels!r}")
    geometry = cfg.geometry
    processes = max(1, processes or (os.cpu_count() or 2) - 1)
    mel_module = DeviceLogMel(cfg.front_end).to(device) if log_mels == "device" else None

    def load(plan: ShardPlan) -> list[bytes | None]:
        return list(io_pool.map(_read, [r.image for r in plan.records]))

    def decode(plan: ShardPlan) -> list[Future[list[tuple[str, np.ndarray] | str]]]:
        # A shard's audio in one task per process, so all the processes decode while the GPU codes.
        step = max(1, -(-len(plan.records) // processes))
        return [finishers.submit(decode_audio, plan.records[a:a + step], cfg)
                for a in range(0, len(plan.records), step)]

    # Log-mels in processes: on threads of this one the interpreter lock serialised them (437-473 images/s
    # for the whole prepare on an H100 machine, below the CPU path). A fork pool starts all its workers at
    # the first task, so they are forked here, before any thread of ours runs and before nvJPEG starts;
    # they never touch CUDA.
    finishers = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"))
    finishers.submit(int).result()
    running: dict[Future[dict[str, Any]], ShardPlan] = {}
    audio: list[list[Future[list[tuple[str, np.ndarray] | str]]]] = []
    try:
        with ThreadPoolExecutor(threads) as io_pool, ThreadPoolExecutor(1) as stage:
            reading: Future[list[bytes | None]] | None = stage.submit(load, plans[0]) if plans else None
            audio.extend(decode(p) for p in plans[:2] if mel_module is not None)
            for k, plan in enumerate(plans):
                assert reading is not None
                datas = reading.result()
                reading = stage.submit(load, plans[k + 1]) if k + 1 < len(plans) else None
                coded = _code_images(datas, geometry, device, batch)
                if mel_module is None:
                    running[finishers.submit(build_shard_from_coded, plan, out, coded, cfg)] = plan
                else:
                    parts = [part for fut in audio.pop(0) for part in fut.result()]
                    if k + 2 < len(plans):
                        audio.append(decode(plans[k + 2]))
                    mels = _device_mels(parts, mel_module, device)
                    running[finishers.submit(build_shard_from_parts, plan, out, coded, mels)] = plan
                if len(running) >= 2 * processes:  # enough in flight: bounded memory
                    wait(running, return_when=FIRST_COMPLETED)
                for fut in [f for f in running if f.done()]:
                    yield running.pop(fut), fut.result()
        for fut in as_completed(list(running)):
            yield running.pop(fut), fut.result()
    finally:
        for fut in [*running, *(f for futs in audio for f in futs)]:
            fut.cancel()  # cancelled or failed: shards not yet started are dropped, a rerun builds them
        finishers.shutdown(wait=True)
