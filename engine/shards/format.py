"""Prepared shards on disk: WebDataset-style tar shards plus an index. Torch-free.

Layout of ``SHARDS`` (written by ``soundscape-engine prepare --data DIR --out SHARDS``)::

    SHARDS/index.json            {"format": "soundscape-shards", "version": 1, "geometry": {...},
                                 "shards": [{"name", "split", "count"}], "counts": {split: n},
                                 "skipped": {reason: n}, "source": DIR, "data": DataConfig,
                                 "log_mel": {"normalised", "audio_source", "front_end"}, ...}
    SHARDS/train-000000.tar      a tar of consecutive members per sample (the WebDataset convention):
                                  <key>.jpg   the central image region, re-encoded (RGB JPEG)
                                  <key>.npy   the whole log-mel, float16 (n_mels, T), normalised by the
                                              front-end (for SoundingEarth spectrograms: x = 10 ln v of
                                              the 8-bit encoding, then each clip standardised)
                                  <key>.json  {"key", "long_key", "lon", "lat", "split"}
    SHARDS/train-000000.json     the shard's sidecar: its keys, skipped keys and plan hash (resume)

Image geometry (:class:`ShardGeometry`, from the preset's ``data.image_region`` and ``data.stored_size``):
a SoundingEarth image is 1024 px (about 0.2 m per pixel, the recording at its centre). The cache keeps the
central ``region`` source pixels (the paper presets: 768, the central 75 %) stored at ``stored`` px (the
paper presets: 256; ``--stored-size 384`` keeps a 1/2-scale DCT decode as it is). The training
augmentation (:mod:`engine.augment`) cuts each crop inside that region: a random scale of its side, a
random rotation, and a scale shrunk until the rotated crop's corners stay inside (``s (|cos a| + |sin a|)
<= 1``), so no crop shows padding; it is resampled to the encoder's 192 px.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from engine.data.splits import SPLIT_NAMES
from engine.errors import DatasetError
from engine.files import atomic_write_bytes, atomic_write_text, read_manifest

log = logging.getLogger(__name__)

SHARDS_FORMAT = "soundscape-shards"
SHARDS_VERSION = 1
INDEX_NAME = "index.json"
SPLITS = SPLIT_NAMES


@dataclass(frozen=True)
class ShardGeometry:
    """Which part of each image the cache keeps, and at what size.

    Args:
        source_size: the side of the source images this geometry is described for (SoundingEarth: 1024).
            Images of another size keep the same fraction ``region / source_size`` of their side.
        region: side of the central square kept, in source pixels.
        stored: side it is stored at, in pixels.
        quality: JPEG quality of the re-encoded region.
    """

    source_size: int = 1024
    region: int = 768
    stored: int = 384
    quality: int = 90

    def __post_init__(self) -> None:
        if not 0 < self.region <= self.source_size:
            raise DatasetError("--image-region", f"{self.region} px is not inside a {self.source_size} px image",
                               "choose a fraction in (0, 1]")
        if not 32 <= self.stored <= self.region:
            raise DatasetError("--stored-size", f"{self.stored} px must be between 32 and the region "
                               f"({self.region} px)", "store the region at its size or smaller")
        if not 50 <= self.quality <= 100:
            raise DatasetError("--quality", f"JPEG quality {self.quality} is outside 50..100", "use e.g. 90")

    @property
    def scale(self) -> float:
        """Source pixels per stored pixel."""
        return self.region / self.stored

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardGeometry:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclass(frozen=True)
class ShardInfo:
    """One shard as the index lists it."""

    name: str
    split: str
    count: int


@dataclass
class ShardIndex:
    """``SHARDS/index.json`` in memory."""

    root: Path
    geometry: ShardGeometry
    shards: list[ShardInfo]
    counts: dict[str, int]
    skipped: dict[str, int]
    n_mels: int
    extra: dict[str, Any] = field(default_factory=dict)

    def split_shards(self, split: str) -> list[ShardInfo]:
        """The shards of one split (``train``, ``val`` or ``test``), in index order."""
        return [s for s in self.shards if s.split == split]

    def path(self, shard: ShardInfo) -> Path:
        return self.root / shard.name


@dataclass
class RawSample:
    """One sample as stored: the re-encoded JPEG bytes, the float16 log-mel and its metadata."""

    key: str
    jpeg: bytes
    mel: np.ndarray  # float16 (n_mels, T)
    lon: float
    lat: float
    split: str
    long_key: str = ""


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:06d}.tar"


def plan_hash(keys: list[str], geometry: ShardGeometry, config: dict[str, Any] | None = None) -> str:
    """A hash of what a shard is planned to hold (keys, geometry, the data and front-end configs); a kept
    shard must match it to be reused on resume."""
    text = json.dumps({"keys": keys, "geometry": geometry.to_dict(), "config": config or {},
                       "version": SHARDS_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_mel(mel: np.ndarray) -> bytes:
    """A log-mel as ``.npy`` bytes, float16."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(mel, dtype=np.float16), allow_pickle=False)
    return buf.getvalue()


def decode_mel(data: bytes) -> np.ndarray:
    """``.npy`` bytes -> float16 (n_mels, T). Raises ``ValueError`` on anything else."""
    arr = np.load(io.BytesIO(data), allow_pickle=False)
    if arr.dtype != np.float16 or arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"log-mel of dtype {arr.dtype} and shape {arr.shape}")
    return arr


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # reproducible shards
    tar.addfile(info, io.BytesIO(data))


def write_shard(path: Path, samples: list[RawSample], sidecar: dict[str, Any]) -> None:
    """Write one shard and its sidecar atomically (temporary names, then rename; sidecar last).

    A shard whose sidecar exists is complete: :func:`completed_shard` relies on that order.
    """
    def write_tar(f: IO[bytes]) -> None:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for s in samples:
                meta = {"key": s.key, "long_key": s.long_key, "lon": s.lon, "lat": s.lat, "split": s.split}
                _tar_member(tar, f"{s.key}.jpg", s.jpeg)
                _tar_member(tar, f"{s.key}.npy", encode_mel(s.mel))
                _tar_member(tar, f"{s.key}.json", json.dumps(meta).encode())

    atomic_write_bytes(path, write_tar)
    atomic_write_text(path.with_suffix(".json"), json.dumps(sidecar))


def completed_shard(path: Path, expected_plan: str) -> dict[str, Any] | None:
    """The sidecar of a finished shard made from the same plan, or None (missing, partial, other plan)."""
    side = path.with_suffix(".json")
    if not path.is_file() or not side.is_file():
        return None
    try:
        data = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if data.get("plan") == expected_plan else None


SkipCallback = Callable[[str, str], None]


def iter_shard(path: Path, on_skip: SkipCallback | None = None) -> Iterator[RawSample]:
    """Stream the samples of one shard in stored order.

    A sample whose log-mel or metadata cannot be parsed, or that lacks a member, is skipped and reported
    through ``on_skip(reason, key)``; a truncated or damaged tar ends the shard (reason ``damaged shard``).
    JPEG bytes are not decoded here: the decoder (CPU or GPU) reports bad ones.
    """
    def skip(reason: str, key: str) -> None:
        if on_skip is not None:
            on_skip(reason, key)
        else:
            log.warning("%s: skipped sample %s (%s)", path, key, reason)

    def finish(key: str, members: dict[str, bytes]) -> RawSample | None:
        if not {"jpg", "npy", "json"} <= members.keys():
            skip("incomplete sample", key)
            return None
        try:
            mel = decode_mel(members["npy"])
            meta = json.loads(members["json"])
            return RawSample(key, members["jpg"], mel, float(meta["lon"]), float(meta["lat"]),
                             str(meta["split"]), str(meta.get("long_key", "")))
        except (ValueError, KeyError, TypeError, EOFError, OSError):
            skip("unreadable log-mel or metadata", key)
            return None

    key: str | None = None
    members: dict[str, bytes] = {}
    try:
        with open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                stem, _, ext = base.partition(".")
                if stem != key:
                    if key is not None and (sample := finish(key, members)) is not None:
                        yield sample
                    key, members = stem, {}
                fobj = tar.extractfile(member)
                members[ext] = fobj.read() if fobj is not None else b""
    except (tarfile.TarError, OSError, EOFError) as err:
        skip("damaged shard", f"{path.name} ({type(err).__name__})")
        return
    if key is not None and (sample := finish(key, members)) is not None:
        yield sample


def write_index(root: Path, index: dict[str, Any]) -> None:
    data = {"format": SHARDS_FORMAT, "version": SHARDS_VERSION, **index}
    atomic_write_text(root / INDEX_NAME, json.dumps(data, indent=1))


def read_index(root: str | Path) -> ShardIndex:
    """Read ``SHARDS/index.json``. Raises :class:`DatasetError` naming the folder when it holds no shards."""
    root = Path(root)
    data = read_manifest(root / INDEX_NAME, SHARDS_FORMAT, (SHARDS_VERSION,), DatasetError, what="a folder of prepared shards",
                         make="run 'soundscape-engine prepare --data DIR --out SHARDS' first (or let it finish)",
                         redo="rerun prepare with this version of Soundscape Mapper to rebuild it")
    shards = [ShardInfo(s["name"], s["split"], int(s["count"])) for s in data["shards"]]
    known = {"format", "version", "geometry", "shards", "counts", "skipped", "n_mels"}
    return ShardIndex(root, ShardGeometry.from_dict(data["geometry"]), shards, dict(data["counts"]),
                      dict(data["skipped"]), int(data["n_mels"]),
                      {k: v for k, v in data.items() if k not in known})
