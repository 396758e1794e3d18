"""The shard plan and the building of one shard: which records go into which shard, and each record
encoded as a shard sample (the central image region re-encoded as JPEG, the whole log-mel).

The plan is a pure function of the listing, the seed, the shard size and the configs, so a shard whose
tar and sidecar carry the same plan hash is complete (:func:`engine.shards.format.completed_shard`).
The orchestration (workers, resume, index) is :mod:`engine.shards.prepare`; the nvJPEG path is
:mod:`engine.shards.gpu_prepare`. Torch-free.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.audio.front_end import load_audio
from engine.config.data import DataConfig
from engine.config.front_end import FrontEndConfig
from engine.data.records import SPECTROGRAM_JPG, PairRecord
from engine.data.source import record_image, record_log_mel
from engine.errors import AudioFileError, DatasetError, ImageFileError
from engine.shards.format import SPLITS, RawSample, ShardGeometry, plan_hash, shard_name, write_shard


@dataclass(frozen=True)
class PrepareConfig:
    """What ``prepare`` builds.

    Args:
        data: how the dataset is read (image region and stored size, split rule, audio source): a preset's.
        front_end: the log-mel front-end (normalisation; raw audio) of the preset.
        quality: JPEG quality of the stored regions.
        shard_size: samples per shard.
        workers: processes for the CPU path (None: all cores).
        seed: the shuffle of samples across shards (the split is the engine's, independent of seeds).
        decoder: ``cpu`` (Pillow, DCT-scaled) or ``cuda`` (nvJPEG decode and encode on the GPU).
        limit: only the first ``limit`` usable pairs (for quick trials and benchmarks).
    """

    data: DataConfig = field(default_factory=DataConfig)
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)
    quality: int = 90
    shard_size: int = 1000
    workers: int | None = None
    seed: int = 0
    decoder: str = "cpu"
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise DatasetError("--shard-size", f"{self.shard_size} is not a positive count", "use e.g. 1000")
        if self.decoder not in ("cpu", "cuda"):
            raise DatasetError("--decoder", f"unknown decoder {self.decoder!r}", "use 'cpu' or 'cuda'")
        _ = self.geometry  # validates region, stored size and quality

    @property
    def geometry(self) -> ShardGeometry:
        return ShardGeometry(region=round(self.data.image_region * 1024), stored=self.data.stored_size,
                             quality=self.quality)


@dataclass(frozen=True)
class ShardPlan:
    name: str
    split: str
    records: tuple[PairRecord, ...]
    plan: str


def _key_order(record: PairRecord) -> tuple[int, str]:
    return (record.number if record.number is not None else 0, record.key)


def plan_shards(records: list[PairRecord], splits: list[str], cfg: PrepareConfig) -> list[ShardPlan]:
    """Split the records into shards: per split, a seeded shuffle, then runs of ``shard_size``."""
    config = {"data": cfg.data.to_dict(), "front_end": cfg.front_end.to_dict()}
    plans = []
    for split in SPLITS:
        rows = sorted((r for r, s in zip(records, splits, strict=True) if s == split), key=_key_order)
        order = np.random.default_rng([cfg.seed, SPLITS.index(split)]).permutation(len(rows))
        rows = [rows[i] for i in order]
        for number, start in enumerate(range(0, len(rows), cfg.shard_size)):
            chunk = tuple(rows[start:start + cfg.shard_size])
            plans.append(ShardPlan(shard_name(split, number), split, chunk,
                                   plan_hash([r.key for r in chunk], cfg.geometry, config)))
    return plans


class SkipSample(Exception):
    """A record that cannot be cached; ``reason`` is one of the engine's skip reasons."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """uint8 (H, W, 3) RGB -> JPEG bytes (Pillow, libjpeg-turbo)."""
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_record(record: PairRecord, split: str, cfg: PrepareConfig, jpeg: bytes | None = None) -> RawSample:
    """One record -> a cache sample. ``jpeg``: the region already re-encoded (the GPU path).

    Raises:
        SkipSample: with the reason, when the image or the audio cannot be decoded.
    """
    if jpeg is None:
        try:
            jpeg = encode_jpeg(record_image(record, cfg.data), cfg.quality)
        except ImageFileError:
            raise SkipSample("unreadable image") from None
    try:
        mel = record_log_mel(record, cfg.front_end)
    except AudioFileError:
        raise SkipSample("unreadable audio") from None
    return RawSample(record.key, jpeg, mel.astype(np.float16), record.lon, record.lat, split)


def build_shard_cpu(plan: ShardPlan, out_dir: Path, cfg: PrepareConfig) -> dict[str, Any]:
    """Decode, re-encode and write one shard (runs in a worker process). Returns its sidecar."""
    samples: list[RawSample] = []
    skipped: dict[str, list[str]] = {}
    for record in plan.records:
        try:
            samples.append(encode_record(record, plan.split, cfg))
        except SkipSample as skip:
            skipped.setdefault(skip.reason, []).append(record.key)
    return finish_shard(plan, out_dir, samples, skipped)


def build_shard_from_coded(plan: ShardPlan, out_dir: Path, coded: list[bytes | str],
                           cfg: PrepareConfig) -> dict[str, Any]:
    """Finish a shard whose regions are already re-encoded (the nvJPEG path): decode the log-mels and write
    it. ``coded[i]`` is record i's JPEG or its skip reason. Runs in a worker process. Returns the sidecar."""
    samples: list[RawSample] = []
    skipped: dict[str, list[str]] = {}
    for record, jpeg in zip(plan.records, coded, strict=True):
        try:
            if isinstance(jpeg, str):
                raise SkipSample(jpeg)
            samples.append(encode_record(record, plan.split, cfg, jpeg=jpeg))
        except SkipSample as skip:
            skipped.setdefault(skip.reason, []).append(record.key)
    return finish_shard(plan, out_dir, samples, skipped)


def decode_audio(records: list[PairRecord], cfg: PrepareConfig) -> list[tuple[str, np.ndarray] | str]:
    """The audio of some records for a device log-mel (runs in a worker process): per record
    ``("samples", mono float32 at the front-end's rate)`` for an audio file, ``("mel", normalised
    log-mel)`` for a spectrogram JPEG (nothing to compute), or the skip reason."""
    out: list[tuple[str, np.ndarray] | str] = []
    for record in records:
        try:
            if record.audio_kind == SPECTROGRAM_JPG:
                out.append(("mel", record_log_mel(record, cfg.front_end)))
            else:
                out.append(("samples", load_audio(record.audio, cfg.front_end.sample_rate,
                                                  cfg.front_end.resample_quality)[0]))
        except AudioFileError:
            out.append("unreadable audio")
    return out


def build_shard_from_parts(plan: ShardPlan, out_dir: Path, coded: list[bytes | str],
                           mels: list[np.ndarray | str]) -> dict[str, Any]:
    """Write a shard whose regions and log-mels are both ready (the nvJPEG path with device log-mels).
    ``coded[i]``/``mels[i]``: record i's JPEG / normalised log-mel, or a skip reason. Returns the sidecar."""
    samples: list[RawSample] = []
    skipped: dict[str, list[str]] = {}
    for record, jpeg, mel in zip(plan.records, coded, mels, strict=True):
        reason = jpeg if isinstance(jpeg, str) else mel if isinstance(mel, str) else None
        if reason is not None:
            skipped.setdefault(reason, []).append(record.key)
            continue
        samples.append(RawSample(record.key, jpeg, mel.astype(np.float16), record.lon, record.lat, plan.split))
    return finish_shard(plan, out_dir, samples, skipped)


def finish_shard(plan: ShardPlan, out_dir: Path, samples: list[RawSample],
                 skipped: dict[str, list[str]]) -> dict[str, Any]:
    sidecar = {"name": plan.name, "split": plan.split, "count": len(samples), "plan": plan.plan,
               "n_mels": int(samples[0].mel.shape[0]) if samples else 0,
               "keys": [s.key for s in samples], "skipped": skipped}
    write_shard(out_dir / plan.name, samples, sidecar)
    return sidecar
