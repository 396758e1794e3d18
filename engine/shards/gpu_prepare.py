"""The nvJPEG path of ``prepare``: batched JPEG decode, crop, downscale and JPEG encode on the GPU.

torchvision's ``decode_jpeg``/``encode_jpeg`` with CUDA tensors run nvJPEG; with ``device="cpu"`` the same
functions run libjpeg-turbo, which is how the tests exercise this module without a GPU. Full-resolution
images are decoded (nvJPEG has no DCT scaling), the central region is cut and reduced by area averaging
(exactly the CPU path's full-decode baseline), then re-encoded. Three stages overlap: a thread pool reads
the next shard's files and decodes its spectrograms, the GPU codes the current shard, a writer thread
writes the previous one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.io import encode_jpeg

from engine.gpu.decode import as_byte_tensor, decode_batch
from engine.shards.codec import region_box
from engine.shards.format import CacheGeometry, RawSample
from engine.shards.prepare import ShardPlan, _SkipSample, encode_record, finish_shard

log = logging.getLogger(__name__)


@dataclass
class _PlanInputs:
    plan: ShardPlan
    images: list[bytes | None]  # None: missing file


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def regions_from_images(images: list[torch.Tensor], geometry: CacheGeometry) -> list[torch.Tensor]:
    """Cut the central region of each (3, H, W) uint8 image and bring it to the stored size (uint8).

    Integer reduction factors use area averaging (what the CPU full-decode path does); others use
    antialiased bilinear resampling. Images of one size are processed as one batch.
    """
    out: list[torch.Tensor | None] = [None] * len(images)
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for i, img in enumerate(images):
        left, top, right, _ = region_box(img.shape[2], img.shape[1], geometry)
        side = right - left
        groups.setdefault((round(left), round(top), round(side), img.shape[1]), []).append(i)
    size = geometry.stored
    for (left, top, side, _), idx in groups.items():
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


def _load_inputs(plan: ShardPlan, io_pool: ThreadPoolExecutor) -> _PlanInputs:
    return _PlanInputs(plan, list(io_pool.map(_read, [r.image for r in plan.records])))


def _code_images(inputs: _PlanInputs, geometry: CacheGeometry, device: torch.device,
                 batch: int) -> tuple[list[bytes | None], list[str | None]]:
    """JPEG bytes of each record's region, or None with a skip reason."""
    n = len(inputs.images)
    jpegs: list[bytes | None] = [None] * n
    reasons: list[str | None] = ["missing image" if d is None else None for d in inputs.images]
    present = [i for i in range(n) if inputs.images[i] is not None]
    for start in range(0, len(present), batch):
        idx = present[start:start + batch]
        decoded = decode_batch([as_byte_tensor(inputs.images[i]) for i in idx], device)  # type: ignore[arg-type]
        good = [(i, img) for i, img in zip(idx, decoded, strict=True) if img is not None]
        for i, img in zip(idx, decoded, strict=True):
            if img is None:
                reasons[i] = "unreadable image"
        if not good:
            continue
        regions = regions_from_images([img for _, img in good], geometry)
        encoded = encode_jpeg(regions, quality=geometry.quality)
        for (i, _), data in zip(good, encoded, strict=True):
            jpegs[i] = bytes(data.cpu().numpy().tobytes())
    return jpegs, reasons


def _assemble(inputs: _PlanInputs, jpegs: list[bytes | None], reasons: list[str | None],
              geometry: CacheGeometry, io_pool: ThreadPoolExecutor) -> tuple[list[RawSample], dict[str, list[str]]]:
    def one(i: int) -> RawSample | str:
        if reasons[i] is not None:
            return reasons[i]  # type: ignore[return-value]
        try:
            return encode_record(inputs.plan.records[i], geometry, jpeg=jpegs[i])
        except _SkipSample as skip:
            return skip.reason

    samples: list[RawSample] = []
    skipped: dict[str, list[str]] = {}
    for i, result in enumerate(io_pool.map(one, range(len(jpegs)))):
        if isinstance(result, str):
            skipped.setdefault(result, []).append(inputs.plan.records[i].key)
        else:
            samples.append(result)
    return samples, skipped


def build_shards_cuda(plans: list[ShardPlan], out: Path, geometry: CacheGeometry, device: str | torch.device = "cuda",
                      batch: int = 128, threads: int = 16) -> Iterator[tuple[ShardPlan, dict[str, Any]]]:
    """Build the given shards with GPU JPEG coding; yields each (plan, sidecar) once written.

    Args:
        plans: shards still to build.
        out: the cache folder.
        geometry: region and stored size.
        device: ``cuda`` (nvJPEG) or ``cpu`` (libjpeg-turbo through torchvision; tests).
        batch: images per batched decode call.
        threads: threads reading files and decoding spectrograms.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        from engine.errors import ConfigError

        raise ConfigError("--decoder cuda", "no CUDA device is available", "use --decoder cpu")
    with ThreadPoolExecutor(threads) as io_pool, ThreadPoolExecutor(1) as stage, ThreadPoolExecutor(1) as writer:
        reading: Future[_PlanInputs] | None = stage.submit(_load_inputs, plans[0], io_pool) if plans else None
        writing: Future[tuple[ShardPlan, dict[str, Any]]] | None = None
        for k, plan in enumerate(plans):
            assert reading is not None
            inputs = reading.result()
            reading = stage.submit(_load_inputs, plans[k + 1], io_pool) if k + 1 < len(plans) else None
            jpegs, reasons = _code_images(inputs, geometry, device, batch)
            samples, skipped = _assemble(inputs, jpegs, reasons, geometry, io_pool)
            if writing is not None:
                yield writing.result()
            writing = writer.submit(lambda p=plan, s=samples, sk=skipped: (p, finish_shard(p, out, s, sk)))
        if writing is not None:
            yield writing.result()
