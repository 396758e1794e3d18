"""Scene classification transfer (UC Merced, AID, NWPU-RESISC45): linear probe or fine-tuning."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from engine.device import resolve_device
from engine.downstream.data import ImageDataset, SkippedFiles, make_loader
from engine.downstream.finetune import SceneClassifier, finetune
from engine.downstream.layouts import SCENE_DATASETS, list_scene_dataset
from engine.downstream.linear_probe import extract_features, fit_logistic_regression
from engine.downstream.metrics import classification_summary, confusion_matrix
from engine.downstream.results import make_result
from engine.downstream.splits import SPLITS, alternate_split, stratified_split
from engine.downstream.weights import Encoders, PooledBackbone
from engine.errors import ConfigError, DatasetError
from engine.progress import Job

log = logging.getLogger(__name__)

MODES = ("linear", "finetune")
# Share of each class used for training. 0.5 is what the paper's authors' code uses for all three
# datasets (every other image); see README "Downstream transfer".
DEFAULT_TRAIN_FRACTION = {"ucmerced": 0.5, "aid": 0.5, "resisc45": 0.5}


@dataclass(frozen=True)
class ClassifyConfig:
    """One scene-classification protocol run. ``None`` means "the dataset's / mode's default"."""

    dataset: str
    root: str
    mode: str = "linear"
    split: str = "stratified"
    train_fraction: float | None = None
    seed: int = 0
    image_size: int | None = None  # default: the dataset's native size
    batch_size: int = 64
    epochs: int = 10  # fine-tuning only
    lr: float = 1e-4  # fine-tuning: backbone lr (the head gets 10x)
    weight_decay: float | None = None  # linear: L2 penalty (1e-4); fine-tuning: AdamW decay (0.05)
    max_iter: int = 500  # linear: L-BFGS iterations
    workers: int = 4
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.dataset not in SCENE_DATASETS:
            raise ConfigError("--dataset", f"unknown dataset {self.dataset!r}", f"use one of {sorted(SCENE_DATASETS)}")
        if self.mode not in MODES:
            raise ConfigError("--mode", f"unknown mode {self.mode!r}", f"use one of {list(MODES)}")
        if self.split not in SPLITS:
            raise ConfigError("--split", f"unknown split {self.split!r}", f"use one of {list(SPLITS)}")
        if self.train_fraction is not None and not 0 < self.train_fraction < 1:
            raise ConfigError("--train-fraction", f"{self.train_fraction} is not in (0, 1)", "e.g. 0.5")
        if self.split == "alternate" and self.train_fraction not in (None, 0.5):
            raise ConfigError("--train-fraction", "the alternate split is always 50/50", "drop --train-fraction")
        for name in ("batch_size", "epochs", "max_iter"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}", "must be at least 1", None)
        if self.image_size is not None and self.image_size < 32:
            raise ConfigError("--image-size", "must be at least 32", None)

    @property
    def resolved_train_fraction(self) -> float:
        return 0.5 if self.split == "alternate" else (self.train_fraction or DEFAULT_TRAIN_FRACTION[self.dataset])

    @property
    def resolved_weight_decay(self) -> float:
        if self.weight_decay is not None:
            return self.weight_decay
        return 1e-4 if self.mode == "linear" else 0.05


def run_classification(cfg: ClassifyConfig, encoders: Encoders, job: Job | None = None) -> dict:
    """Run the protocol and return the results dict (see :mod:`engine.downstream.results`).

    Raises:
        DatasetError: the dataset is missing, another dataset, or every test image is unreadable.
    """
    started = time.time()
    device = resolve_device(cfg.device)
    samples = list_scene_dataset(cfg.root, cfg.dataset)
    size = cfg.image_size or samples.spec.native_size
    labels = np.asarray(samples.labels)
    fraction = cfg.resolved_train_fraction
    if cfg.split == "alternate":
        train_idx, test_idx = alternate_split(len(labels))
    else:
        train_idx, test_idx = stratified_split(labels, fraction, cfg.seed)
    log.info("%s: %d train / %d test images at %d px, %s on %s", samples.spec.title, len(train_idx),
             len(test_idx), size, cfg.mode, device)
    skipped = SkippedFiles()
    n_classes = len(samples.classes)
    torch.manual_seed(cfg.seed)
    train_set = ImageDataset(samples.paths, samples.labels, train_idx, size)
    test_set = ImageDataset(samples.paths, samples.labels, test_idx, size)
    history = None
    if cfg.mode == "linear":
        extractor = PooledBackbone(encoders.image).to(device).eval()
        loader = make_loader(train_set, cfg.batch_size, cfg.workers)
        x_train, kept_train = extract_features(extractor, loader, samples.paths, device, skipped, job, "train features")
        x_test, kept_test = extract_features(extractor, make_loader(test_set, cfg.batch_size, cfg.workers),
                                             samples.paths, device, skipped, job, "test features")
        _require(kept_train, kept_test, samples.spec.title)
        classifier = fit_logistic_regression(x_train, labels[kept_train], n_classes, cfg.resolved_weight_decay,
                                             cfg.max_iter, device, cfg.seed)
        predicted = classifier.predict(x_test)
        feature_dim = int(x_train.shape[1])
    else:
        model = SceneClassifier(encoders.image, n_classes)
        train_loader = make_loader(train_set, cfg.batch_size, cfg.workers, shuffle=True, seed=cfg.seed,
                                   drop_last=len(train_set) > cfg.batch_size)
        history = finetune(model, train_loader, samples.paths, cfg.epochs, cfg.lr, cfg.resolved_weight_decay,
                           device, skipped, job, seed=cfg.seed)
        logits, kept_test = extract_features(model, make_loader(test_set, cfg.batch_size, cfg.workers),
                                             samples.paths, device, skipped, job, "test predictions")
        _require(np.arange(sum(h["seen"] for h in history)), kept_test, samples.spec.title)
        predicted = logits.argmax(1)
        feature_dim = model.features.num_features
    cm = confusion_matrix(labels[kept_test], predicted, n_classes)
    metrics = classification_summary(cm, samples.classes)
    log.info("%s %s: accuracy %.4f on %d test images", samples.spec.title, cfg.mode, metrics["accuracy"],
             len(kept_test))
    protocol = {key: value for key, value in asdict(cfg).items() if key not in ("root", "workers", "dataset")}
    protocol.update(train_fraction=fraction, image_size=size, weight_decay=cfg.resolved_weight_decay,
                    features="backbone (global average pooled)", feature_dim=feature_dim)
    if cfg.mode == "linear":
        for unused in ("epochs", "lr"):
            protocol.pop(unused)
    else:
        protocol.pop("max_iter")
        protocol["head_lr"] = cfg.lr * 10.0
    split = {"train": int(len(train_idx)), "test": int(len(test_idx)), "test_scored": int(len(kept_test)),
             "train_fraction": fraction, "seed": cfg.seed if cfg.split == "stratified" else None}
    return make_result("classify", cfg.dataset, samples.spec.title, protocol, encoders.description, split,
                       metrics, skipped.to_dict(), started, str(device), root=str(samples.folder),
                       history=history)


def _require(kept_train: np.ndarray, kept_test: np.ndarray, title: str) -> None:
    if len(kept_train) == 0 or len(kept_test) == 0:
        side = "training" if len(kept_train) == 0 else "test"
        raise DatasetError(title, f"no {side} image could be decoded", "check the files the warnings name")
