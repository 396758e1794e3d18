"""Device side of the input pipeline: copy, decode and augment whole batches, one step ahead of compute.

A producer thread takes raw batches from the loader (pinned memory on CUDA), and on a side CUDA stream
copies the log-mels (non-blocking), decodes the JPEGs with one batched nvJPEG call and augments the batch;
it records an event and queues the result. The training thread makes its stream wait on that event (no
host synchronisation) and marks the tensors as used by its stream, so the caching allocator keeps them
alive. While the model computes step n, the producer prepares step n+1 (and n+2: ``queue_depth``).
With ``producer="launch"`` there is no thread: the training thread launches batch n+1's copy, decode and
augmentation on the side stream before it hands out batch n. This relies on the augmentation reading
nothing back to the host, and suits batches the loader workers decoded; the batched nvJPEG call holds the
host long enough that the producer thread stays the choice for the device decode (the figures:
``bench/pipeline_probe.py`` and the README).
On CPU the same code runs without streams, which is how the tests exercise it.

Batches whose images the loader workers already decoded (``LoaderConfig(decode="workers")``) skip the
nvJPEG step: their uint8 pixels are copied to the device (non-blocking, from pinned memory) and augmented.

A JPEG that fails to decode is skipped and counted. Its slot is filled with a sample of the previous
batch (or, for the very first batch, of the next one), so every rank keeps the same batch size, which the
all-gather of embeddings across ranks relies on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from engine.augment import augment_images, mask_log_mels
from engine.config.augment import AugmentConfig
from engine.shards.jpeg_decode import decode_batch

log = logging.getLogger(__name__)

# (uint8 regions (B, 3, P, P), log-mel windows (B, n_mels, F), generator) -> (images, mels (B, 1, n_mels, F))
AugmentFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class PipelineConfig:
    """Args:
        augment: the engine's batch augmentation settings (the same as the CPU path's).
        image_size: the side of the encoder's input (the augmentation resamples crops to it).
        channels_last: hand out images in channels_last memory format.
        overlap: prepare batches ahead of compute on a side stream (False: inline, for debugging).
        producer: how batches are prepared ahead: ``thread`` (a producer thread, ``queue_depth`` ahead) or
            ``launch`` (the training thread itself launches the next batch's copy and augmentation on the
            side stream before handing out the current one: no second thread competing for the
            interpreter; the device runs them beside the model).
        queue_depth: batches prepared ahead by the producer thread.
        seed: the augmentation stream; each batch is seeded from (seed, rank, epoch, index) so a
            resumed run augments exactly as an uninterrupted one.
    """

    augment: AugmentConfig = field(default_factory=AugmentConfig)
    image_size: int = 192
    channels_last: bool = False
    overlap: bool = True
    producer: str = "thread"
    queue_depth: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.producer not in ("thread", "launch"):
            raise ValueError(f"producer must be 'thread' or 'launch', not {self.producer!r}")


@dataclass
class DeviceBatch:
    images: torch.Tensor  # (B, 3, size, size) float32 in [0, 1]
    mels: torch.Tensor  # (B, 1, n_mels, F) float32
    lon: torch.Tensor  # (B,) float64, on the host
    lat: torch.Tensor
    keys: list[str]
    epoch: int
    index: int
    event: Any = None  # torch.cuda.Event on CUDA


def split_jpegs(raw: dict[str, Any]) -> list[torch.Tensor]:
    """The per-sample JPEG byte tensors (views) of a raw batch."""
    data, offsets = raw["jpeg"], raw["offsets"].tolist()
    return [data[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


class DevicePipeline:
    """Turns raw loader batches into augmented device batches, prefetched on a side stream.

    Args:
        raw_batches: an iterator of raw batches (from :func:`engine.shard_training.loader.make_loader`).
        device: where to decode and augment.
        cfg: augmentation and overlap settings.
        rank: this process's rank (seeds the augmentation).
        augment: the batch augmentation (default: :mod:`engine.augment` with ``cfg.augment``).
    """

    def __init__(self, raw_batches: Iterator[dict[str, Any]], device: torch.device | str, cfg: PipelineConfig,
                 rank: int = 0, augment: AugmentFn | None = None) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            # The producer thread must use this very GPU, not whatever its own default is.
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.cfg = cfg
        self.rank = rank
        self._augment = augment or self._default_augment
        self.skipped: Counter[str] = Counter()
        self._raw = raw_batches
        self._previous: dict[str, Any] | None = None
        self._pending: list[dict[str, Any]] = []
        self._gen = torch.Generator(device=self.device)
        self._cuda = self.device.type == "cuda"
        self._stream = torch.cuda.Stream(self.device) if self._cuda else None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, cfg.queue_depth))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- producer side -------------------------------------------------------------------------------

    def _next_raw(self) -> dict[str, Any]:
        raw = self._pending.pop(0) if self._pending else next(self._raw)
        with self._lock:
            self.skipped.update(raw.get("skipped", {}))
        return raw

    def _spare(self, count: int) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """Samples to stand in for damaged ones: from the previous batch, else from the next one."""
        source = self._previous
        if source is None:
            source = next(self._raw)
            self._pending.append(source)
        jpegs = split_jpegs(source)
        picks = list(range(len(jpegs)))[-count:]
        return ([jpegs[i] for i in picks], source["mel"][picks], source["lon"][picks], source["lat"][picks],
                [source["keys"][i] for i in picks])

    def _decode(self, raw: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        if "image" in raw:  # decoded by the loader workers, damaged ones already replaced there
            return (raw["image"].to(self.device, non_blocking=True), raw["mel"], raw["lon"], raw["lat"],
                    list(raw["keys"]))
        jpegs = split_jpegs(raw)
        mel, lon, lat, keys = raw["mel"], raw["lon"], raw["lat"], list(raw["keys"])
        images = decode_batch(jpegs, self.device)
        bad = [i for i, img in enumerate(images) if img is None]
        if bad:
            with self._lock:
                self.skipped["unreadable image"] += len(bad)
            log.warning("skipped %d damaged JPEG(s) in the cache: %s", len(bad), [keys[i] for i in bad])
            s_jpegs, s_mel, s_lon, s_lat, s_keys = self._spare(len(bad))
            s_images = decode_batch(s_jpegs, self.device)
            mel, lon, lat = mel.clone(), lon.clone(), lat.clone()
            for j, i in enumerate(bad):
                images[i] = s_images[j]
                mel[i], lon[i], lat[i], keys[i] = s_mel[j], s_lon[j], s_lat[j], s_keys[j]
            if any(img is None for img in images):
                raise RuntimeError("a stand-in sample failed to decode as well")
        self._previous = raw
        return torch.stack(images), mel, lon, lat, keys  # type: ignore[arg-type]

    def _default_augment(self, regions: torch.Tensor, mels: torch.Tensor,
                         gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        images = augment_images(regions, self.cfg.image_size, self.cfg.augment, gen)
        return images, mask_log_mels(mels[:, None].float(), self.cfg.augment, gen)

    def _prepare(self, raw: dict[str, Any]) -> DeviceBatch:
        epoch, index = int(raw.get("epoch", 0)), int(raw.get("index", 0))
        self._gen.manual_seed(hash((self.cfg.seed, self.rank, epoch, index)) & (2**63 - 1))
        regions, mel_host, lon, lat, keys = self._decode(raw)
        mels = mel_host.to(self.device, non_blocking=True)
        images, mels = self._augment(regions, mels, self._gen)
        if self.cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        event = None
        if self._cuda:
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(self.device))
        return DeviceBatch(images, mels, lon, lat, keys, epoch, index, event)

    def _produce(self) -> None:
        try:
            if self._stream is not None:
                torch.cuda.set_device(self.device)
                ctx: Any = torch.cuda.stream(self._stream)
            else:
                ctx = _Null()
            with ctx:
                while not self._stop.is_set():
                    item: Any = self._prepare(self._next_raw())
                    while not self._stop.is_set():
                        try:
                            self._queue.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._queue.put(err)

    # -- consumer side -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[DeviceBatch]:
        if not self.cfg.overlap:
            while True:
                yield self._prepare(self._next_raw())
        if self.cfg.producer == "launch":
            yield from self._launched_ahead()
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._produce, name="device-pipeline", daemon=True)
            self._thread.start()
        while True:
            item = self._queue.get()
            if isinstance(item, StopIteration):
                return
            if isinstance(item, BaseException):
                raise item
            self._hand_over(item)
            yield item

    def _launched_ahead(self) -> Iterator[DeviceBatch]:
        """Prepare batch n+1 on the side stream (kernel launches only), then hand out batch n."""
        def prepare() -> DeviceBatch:
            if self._stream is None:
                return self._prepare(self._next_raw())
            with torch.cuda.stream(self._stream):
                return self._prepare(self._next_raw())

        ahead = prepare()
        while not self._stop.is_set():
            item, ahead = ahead, prepare()
            self._hand_over(item)
            yield item

    def _hand_over(self, item: DeviceBatch) -> None:
        """Order the consumer's stream after the batch's preparation; keep its memory until used there."""
        if item.event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(item.event)
            item.images.record_stream(current)
            item.mels.record_stream(current)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the producer thread (batches in flight are dropped); gives up after ``timeout`` seconds
        (the thread is a daemon) if the loader never answers."""
        self._stop.set()
        if self._thread is not None:
            deadline = time.monotonic() + timeout
            while self._thread.is_alive() and time.monotonic() < deadline:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    self._thread.join(timeout=0.1)
            self._thread = None


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
