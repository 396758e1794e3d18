"""DeepGlobe land-cover segmentation transfer: a DeepLab head on our backbone, fine-tuned end to end
on random crops of the training scenes, scored on whole held-out scenes (tiled) by OA and mIoU.

An image or mask that does not decode is skipped and counted; a mask whose colours are not the 7
DeepGlobe codes, or whose size differs from its image, stops the run (the labels would be wrong).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from engine.device import resolve_device
from engine.downstream import deepglobe
from engine.downstream.data import SkippedFiles
from engine.downstream.decode import read_rgb
from engine.downstream.deeplab import HEADS, DeepLab
from engine.downstream.metrics import IGNORE, confusion_matrix, segmentation_summary
from engine.downstream.results import make_result
from engine.downstream.splits import random_split
from engine.downstream.weights import Encoders
from engine.errors import ConfigError, ImageFileError, UserInputError
from engine.progress import Job

log = logging.getLogger(__name__)

DATASETS = ("deepglobe",)


@dataclass(frozen=True)
class SegmentConfig:
    root: str
    dataset: str = "deepglobe"
    head: str = "deeplabv3plus"
    output_stride: int = 16
    head_channels: int = 256
    train_fraction: float = 0.8  # of the labelled train/ scenes; the rest are the test scenes
    seed: int = 0
    crop: int = 512
    crops_per_image: int = 8  # random crops drawn from each training scene per epoch
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-4  # backbone; the new head learns 10x faster
    weight_decay: float = 1e-4
    eval_tile: int = 1024  # test scenes are predicted in tiles of this side (0: whole scene at once)
    workers: int = 4
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError("--dataset", f"unknown dataset {self.dataset!r}", f"use one of {list(DATASETS)}")
        if self.head not in HEADS:
            raise ConfigError("--head", f"unknown head {self.head!r}", f"use one of {list(HEADS)}")
        if not 0 < self.train_fraction < 1:
            raise ConfigError("--train-fraction", f"{self.train_fraction} is not in (0, 1)", "e.g. 0.8")
        if self.crop < 16 or self.crops_per_image < 1 or self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("--crop/--crops-per-image/--epochs/--batch-size", "out of range",
                              "crop >= 16, batch size >= 2 (BatchNorm), the others >= 1")


@dataclass
class _Item:
    image: np.ndarray | None  # (k, 3, h, w) uint8 or (3, H, W)
    labels: np.ndarray | None  # (k, h, w) int64 or (H, W)
    index: int
    skip: str | None = None  # the reason this scene is skipped
    fatal: tuple[str, str, str | None, str | None] | None = None  # an error to raise in the main process


def _load_scene(images: list, masks: list, index: int) -> _Item:
    """Decode one scene. Errors travel as data: a worker must not raise (the loader would die with an
    unreadable message)."""
    try:
        rgb = read_rgb(images[index])
        mask_rgb = read_rgb(masks[index])
    except UserInputError as err:
        return _Item(None, None, index, skip=str(err))
    try:
        if mask_rgb.shape != rgb.shape:
            raise ImageFileError(masks[index], f"is {mask_rgb.shape[1]}×{mask_rgb.shape[0]} px but its image is "
                                 f"{rgb.shape[1]}×{rgb.shape[0]}", "use the mask that belongs to the image")
        labels = deepglobe.decode_mask(mask_rgb, masks[index])
    except UserInputError as err:
        return _Item(None, None, index, fatal=(type(err).__name__, err.subject, err.problem, err.fix))
    return _Item(rgb.transpose(2, 0, 1), labels.astype(np.int64), index)


def _raise_fatal(item: _Item) -> None:
    name, subject, problem, fix = item.fatal
    cls = ImageFileError if name == "ImageFileError" else UserInputError
    raise cls(subject, problem, fix)


def _pad_to(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = labels.shape
    if h >= size and w >= size:
        return image, labels
    ph, pw = max(0, size - h), max(0, size - w)
    return (np.pad(image, ((0, 0), (0, ph), (0, pw))),
            np.pad(labels, ((0, ph), (0, pw)), constant_values=IGNORE))


class CropDataset(Dataset):
    """Training items: ``k`` random crops (with a random flip and quarter turn) of one scene."""

    def __init__(self, images: list, masks: list, indices: np.ndarray, crop: int, k: int, seed: int) -> None:
        self.images, self.masks, self.indices = images, masks, indices
        self.crop, self.k, self.seed = crop, k, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> _Item:
        item = _load_scene(self.images, self.masks, int(self.indices[i]))
        if item.image is None:
            return item
        image, labels = _pad_to(item.image, item.labels, self.crop)
        rng = np.random.default_rng((self.seed, self.epoch, int(self.indices[i])))
        crops, crop_labels = [], []
        for _ in range(self.k):
            y = int(rng.integers(0, labels.shape[0] - self.crop + 1))
            x = int(rng.integers(0, labels.shape[1] - self.crop + 1))
            img = image[:, y:y + self.crop, x:x + self.crop]
            lab = labels[y:y + self.crop, x:x + self.crop]
            turns, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
            img, lab = np.rot90(img, turns, axes=(1, 2)), np.rot90(lab, turns)
            if flip:
                img, lab = img[:, :, ::-1], lab[:, ::-1]
            crops.append(np.ascontiguousarray(img))
            crop_labels.append(np.ascontiguousarray(lab))
        return _Item(np.stack(crops), np.stack(crop_labels), item.index)


class SceneDataset(Dataset):
    """Evaluation items: one whole scene."""

    def __init__(self, images: list, masks: list, indices: np.ndarray) -> None:
        self.images, self.masks, self.indices = images, masks, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> _Item:
        return _load_scene(self.images, self.masks, int(self.indices[i]))


def _as_list(batch: list) -> list:
    return batch


def _loader(dataset: Dataset, batch: int, workers: int, shuffle: bool, seed: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch, shuffle=shuffle, num_workers=workers, collate_fn=_as_list,
                      generator=torch.Generator().manual_seed(seed))


def _usable(items: list[_Item], paths: list, skipped: SkippedFiles) -> list[_Item]:
    good = []
    for item in items:
        if item.fatal is not None:
            _raise_fatal(item)
        if item.skip is not None:
            skipped.add(paths[item.index], item.skip)
        else:
            good.append(item)
    return good


def train_segmentation(model: DeepLab, dataset: CropDataset, cfg: SegmentConfig, device: torch.device,
                       skipped: SkippedFiles, job: Job | None = None) -> list[dict]:
    """Fine-tune ``model`` on random crops. Returns per-epoch ``{"epoch", "loss", "crops"}``."""
    scenes_per_batch = max(1, cfg.batch_size // cfg.crops_per_image)
    loader = _loader(dataset, scenes_per_batch, cfg.workers, shuffle=True, seed=cfg.seed)
    backbone_params, head_params = model.parameter_groups()
    optimiser = torch.optim.AdamW([{"params": backbone_params, "lr": cfg.lr},
                                   {"params": head_params, "lr": cfg.lr * 10}], weight_decay=cfg.weight_decay)
    total = max(1, cfg.epochs * len(loader))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: (1 - min(s, total) / total) ** 0.9)  # "poly"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    model.to(device).train()
    history, step = [], 0
    for epoch in range(1, cfg.epochs + 1):
        dataset.epoch = epoch
        loss_sum, crops = 0.0, 0
        for batch in loader:
            if job is not None:
                job.check()
            items = _usable(batch, dataset.images, skipped)
            if items and sum(len(i.image) for i in items) >= 2:
                x = torch.from_numpy(np.concatenate([i.image for i in items])).to(device).float().div_(255)
                y = torch.from_numpy(np.concatenate([i.labels for i in items])).to(device)
                if (y != IGNORE).any():
                    with autocast:
                        logits = model(x)
                    loss = F.cross_entropy(logits.float(), y, ignore_index=IGNORE)
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    loss_sum += loss.detach().item() * len(x)
                    crops += len(x)
            schedule.step()
            step += 1
            if job is not None:
                job.report(step, total, f"epoch {epoch}/{cfg.epochs} loss {loss_sum / max(crops, 1):.3f}")
        history.append({"epoch": epoch, "loss": loss_sum / crops if crops else math.nan, "crops": crops})
        log.info("segmentation epoch %d/%d: loss %.4f", epoch, cfg.epochs, history[-1]["loss"])
    model.eval()
    return history


def _tiles(length: int, tile: int) -> list[int]:
    if tile <= 0 or length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)  # the last tile is aligned to the edge (overlapping its neighbour)
    return starts


@torch.no_grad()
def predict_scene(predict: Callable[[torch.Tensor], torch.Tensor], image: np.ndarray, tile: int,
                  device: torch.device) -> np.ndarray:
    """Labels (H, W) of one (3, H, W) uint8 scene, predicted tile by tile with ``predict``
    ((1, 3, h, w) float in [0, 1] -> (1, h, w) labels)."""
    _, h, w = image.shape
    out = np.zeros((h, w), np.int64)
    for y in _tiles(h, tile):
        for x in _tiles(w, tile):
            th, tw = (min(tile, h), min(tile, w)) if tile > 0 else (h, w)
            patch = torch.from_numpy(np.ascontiguousarray(image[:, y:y + th, x:x + tw]))[None]
            out[y:y + th, x:x + tw] = predict(patch.to(device).float().div_(255))[0].cpu().numpy()
    return out


def evaluate_segmentation(predict: Callable[[torch.Tensor], torch.Tensor], dataset: SceneDataset, n_classes: int,
                          tile: int, device: torch.device, skipped: SkippedFiles, workers: int = 0,
                          job: Job | None = None) -> tuple[np.ndarray, int]:
    """Accumulate the pixel confusion matrix over whole scenes (unknown pixels ignored).

    Returns:
        (confusion matrix, number of scenes scored).
    """
    cm = np.zeros((n_classes, n_classes), np.int64)
    scored = 0
    for done, batch in enumerate(_loader(dataset, 1, workers, shuffle=False, seed=0), start=1):
        if job is not None:
            job.check()
        for item in _usable(batch, dataset.images, skipped):
            cm += confusion_matrix(item.labels, predict_scene(predict, item.image, tile, device), n_classes)
            scored += 1
        if job is not None:
            job.report(done, len(dataset), "evaluating scenes")
    return cm, scored


def model_predictor(model: DeepLab, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """``predict`` for :func:`evaluate_segmentation`: argmax of the model's logits."""
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def predict(x: torch.Tensor) -> torch.Tensor:
        with autocast:
            return model(x).argmax(1)

    return predict


def run_segmentation(cfg: SegmentConfig, encoders: Encoders, job: Job | None = None) -> dict:
    """Run the DeepGlobe protocol and return the results dict."""
    started = time.time()
    device = resolve_device(cfg.device)
    samples = deepglobe.list_deepglobe(cfg.root)
    if len(samples.ids) < 2:
        raise ConfigError(cfg.root, "needs at least two labelled scenes (one to train, one to test)", None)
    train_idx, test_idx = random_split(len(samples.ids), cfg.train_fraction, cfg.seed)
    skipped = SkippedFiles()
    for path in samples.unpaired:
        skipped.add(path, f"{path}: has no <id>_mask.png")
    n_classes = len(deepglobe.CLASSES)
    torch.manual_seed(cfg.seed)
    model = DeepLab(encoders.image, n_classes, cfg.head, cfg.output_stride, cfg.head_channels)
    log.info("DeepGlobe: %d train / %d test scenes, %s (output stride %d) on %s", len(train_idx), len(test_idx),
             cfg.head, cfg.output_stride, device)
    crops = CropDataset(samples.images, samples.masks, train_idx, cfg.crop, cfg.crops_per_image, cfg.seed)
    history = train_segmentation(model, crops, cfg, device, skipped, job)
    scenes = SceneDataset(samples.images, samples.masks, test_idx)
    cm, scored = evaluate_segmentation(model_predictor(model, device), scenes, n_classes, cfg.eval_tile, device,
                                       skipped, cfg.workers, job)
    if scored == 0:
        raise ConfigError(cfg.root, "no test scene could be decoded", "check the files the warnings name")
    metrics = segmentation_summary(cm, list(deepglobe.CLASSES))
    log.info("DeepGlobe: OA %.4f, mIoU %.4f on %d scenes", metrics["overall_accuracy"], metrics["mean_iou"], scored)
    protocol = {k: v for k, v in asdict(cfg).items() if k not in ("root", "workers", "dataset")}
    protocol.update(ignored="unknown (black) pixels", head_lr=cfg.lr * 10, schedule="poly 0.9",
                    crop_augmentation="random crop, flip, quarter turn")
    split = {"train": int(len(train_idx)), "test": int(len(test_idx)), "test_scored": scored,
             "train_fraction": cfg.train_fraction, "seed": cfg.seed,
             "test_ids": [samples.ids[i] for i in test_idx]}
    return make_result("segment", "deepglobe", "DeepGlobe Land Cover", protocol, encoders.description, split,
                       metrics, skipped.to_dict(), started, str(device), root=str(samples.folder), history=history)
