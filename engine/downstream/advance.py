"""ADVANCE audiovisual scene classification: frozen encoders, linear classifiers on the audio, the
image and the concatenated embeddings, macro F1 for each (the paper's linear evaluation protocol).

Each clip goes through the project's one audio front-end and is embedded as the mean of its chunk
embeddings (the chunk rule). Features are computed once; the stratified train/test split is then
re-drawn ``repeats`` times (seeds ``seed .. seed+repeats-1``) and the metrics averaged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from engine.audio import FrontEndConfig, chunk_log_mel, file_log_mel
from engine.device import resolve_device
from engine.downstream.data import ImageDataset, SkippedFiles, make_loader
from engine.downstream.layouts import AdvanceSamples, list_advance
from engine.downstream.linear_probe import extract_features, fit_logistic_regression
from engine.downstream.metrics import classification_summary, confusion_matrix, macro_f1, weighted_f1
from engine.downstream.results import make_result
from engine.downstream.splits import stratified_split
from engine.downstream.weights import Encoders, PooledBackbone
from engine.errors import ConfigError, DatasetError, UserInputError
from engine.models import AudioEncoder
from engine.progress import Job

log = logging.getLogger(__name__)

MODALITIES = ("audio", "image", "both")
FEATURES = ("embedding", "backbone")


@dataclass(frozen=True)
class AdvanceConfig:
    root: str
    train_fraction: float = 0.8  # the paper's authors' code holds out 20% for testing
    seed: int = 0
    repeats: int = 5
    image_size: int = 256  # ADVANCE images are 512 px; the authors' code halves them
    features: str = "embedding"  # the encoders' outputs, as the authors' code; or pooled backbone features
    weight_decay: float = 1e-4
    max_iter: int = 500
    batch_size: int = 64
    workers: int = 4
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise ConfigError("--features", f"unknown features {self.features!r}", f"use one of {list(FEATURES)}")
        if not 0 < self.train_fraction < 1:
            raise ConfigError("--train-fraction", f"{self.train_fraction} is not in (0, 1)", "e.g. 0.8")
        if self.repeats < 1 or self.batch_size < 1 or self.image_size < 32:
            raise ConfigError("--repeats/--batch-size/--image-size", "out of range", "use positive values")


class _SoundDataset(Dataset):
    """Items ``(chunks (C, 1, n_mels, T) float32, index, error message or None)``."""

    def __init__(self, samples: AdvanceSamples, indices: np.ndarray, front_end: FrontEndConfig) -> None:
        self.samples, self.indices, self.front_end = samples, indices, front_end

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[np.ndarray | None, int, str | None]:
        index = int(self.indices[i])
        try:
            mel = file_log_mel(self.samples.sounds[index], self.front_end)
            return chunk_log_mel(mel, self.front_end), index, None
        except UserInputError as err:
            return None, index, str(err)


def _as_list(batch: list) -> list:
    return batch


class _PooledAudio(torch.nn.Module):
    def __init__(self, encoder: AudioEncoder) -> None:
        super().__init__()
        self.backbone = encoder.backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.backbone.avgpool(self.backbone.feature_map(x)), 1)


@torch.no_grad()
def embed_sounds(encoder: torch.nn.Module, samples: AdvanceSamples, front_end: FrontEndConfig,
                 device: torch.device, skipped: SkippedFiles, workers: int, clips_per_batch: int = 16,
                 job: Job | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Embed every clip as the mean of its chunk embeddings. Returns (features, indices kept)."""
    dataset = _SoundDataset(samples, np.arange(len(samples.sounds)), front_end)
    loader = DataLoader(dataset, batch_size=clips_per_batch, num_workers=workers, collate_fn=_as_list,
                        persistent_workers=False)
    out: dict[int, np.ndarray] = {}
    done = 0
    for batch in loader:
        if job is not None:
            job.check()
        good = []
        for chunks, index, error in batch:
            if error is not None:
                skipped.add(samples.sounds[index], error)
            else:
                good.append((chunks, index))
        # Clips of equal length (ADVANCE's are all 10 s) share one forward pass.
        by_shape: dict[tuple, list] = {}
        for chunks, index in good:
            by_shape.setdefault(chunks.shape[1:], []).append((chunks, index))
        for group in by_shape.values():
            stacked = torch.from_numpy(np.concatenate([c for c, _ in group])).to(device)
            z = encoder(stacked).float().cpu()
            start = 0
            for chunks, index in group:
                out[index] = z[start:start + len(chunks)].mean(0).numpy()
                start += len(chunks)
        done += len(batch)
        if job is not None:
            job.report(done, len(dataset), "sound embeddings")
    kept = np.array(sorted(out), dtype=np.int64)
    return (np.stack([out[i] for i in kept]) if len(kept) else np.zeros((0, 0), np.float32)), kept


def run_advance(cfg: AdvanceConfig, encoders: Encoders, job: Job | None = None) -> dict:
    """Run the ADVANCE linear evaluation and return the results dict.

    Raises:
        DatasetError: not ADVANCE, or too few usable pairs to split.
    """
    if encoders.audio is None:
        raise ConfigError("--weights", "ADVANCE needs the audio encoder too", "give a run folder or 'random'")
    started = time.time()
    device = resolve_device(cfg.device)
    samples = list_advance(cfg.root)
    skipped = SkippedFiles()
    for path in samples.unpaired:
        skipped.add(path, f"{path}: has no partner (image without sound or sound without image)")
    labels = np.asarray(samples.labels)
    if cfg.features == "embedding":
        image_model, audio_model = encoders.image, encoders.audio
    else:
        image_model, audio_model = PooledBackbone(encoders.image), _PooledAudio(encoders.audio)
    image_model, audio_model = image_model.to(device).eval(), audio_model.to(device).eval()
    image_set = ImageDataset(samples.images, samples.labels, np.arange(len(samples.images)), cfg.image_size)
    z_img, kept_img = extract_features(image_model, make_loader(image_set, cfg.batch_size, cfg.workers),
                                       samples.images, device, skipped, job, "image embeddings")
    z_snd, kept_snd = embed_sounds(audio_model, samples, encoders.front_end, device, skipped, cfg.workers, job=job)
    # Keep the pairs whose image and sound both worked.
    both = np.intersect1d(kept_img, kept_snd)
    if len(both) < 2 * len(samples.classes):
        raise DatasetError(samples.root, f"only {len(both)} usable image/sound pairs", "check the files named above")
    z_img = z_img[np.searchsorted(kept_img, both)]
    z_snd = z_snd[np.searchsorted(kept_snd, both)]
    y = labels[both]
    features = {"audio": z_snd, "image": z_img, "both": np.concatenate([z_snd, z_img], axis=1)}
    n_classes = len(samples.classes)
    per_repeat: dict[str, list[dict]] = {m: [] for m in MODALITIES}
    summed = {m: np.zeros((n_classes, n_classes), np.int64) for m in MODALITIES}
    for r in range(cfg.repeats):
        train, test = stratified_split(y, cfg.train_fraction, cfg.seed + r)
        for modality in MODALITIES:
            x = features[modality]
            classifier = fit_logistic_regression(x[train], y[train], n_classes, cfg.weight_decay, cfg.max_iter,
                                                 device, cfg.seed + r)
            cm = confusion_matrix(y[test], classifier.predict(x[test]), n_classes)
            summed[modality] += cm
            per_repeat[modality].append({"seed": cfg.seed + r, "macro_f1": macro_f1(cm),
                                         "weighted_f1": weighted_f1(cm), "accuracy": float(np.trace(cm) / cm.sum())})
        if job is not None:
            job.report(r + 1, cfg.repeats, "linear classifiers")
    metrics = {}
    for modality in MODALITIES:
        runs = per_repeat[modality]
        block = classification_summary(summed[modality], samples.classes)
        block.update({
            "macro_f1": float(np.mean([p["macro_f1"] for p in runs])),
            "macro_f1_std": float(np.std([p["macro_f1"] for p in runs])),
            "weighted_f1": float(np.mean([p["weighted_f1"] for p in runs])),
            "accuracy": float(np.mean([p["accuracy"] for p in runs])),
            "repeats": runs,
        })
        metrics[modality] = block
        log.info("ADVANCE %s: macro F1 %.4f ± %.4f", modality, block["macro_f1"], block["macro_f1_std"])
    protocol = {k: v for k, v in asdict(cfg).items() if k not in ("root", "workers")}
    protocol.update(classifier="multinomial logistic regression (L-BFGS, L2)",
                    audio="front-end log-mel, mean of chunk embeddings", front_end=encoders.front_end.to_dict(),
                    confusion_matrix="summed over repeats")
    n_test = len(y) - len(stratified_split(y, cfg.train_fraction, cfg.seed)[0])
    split = {"pairs": int(len(y)), "train": int(len(y) - n_test), "test": int(n_test),
             "train_fraction": cfg.train_fraction, "seed": cfg.seed, "repeats": cfg.repeats}
    return make_result("advance", "advance", "ADVANCE", protocol, encoders.description, split, metrics,
                       skipped.to_dict(), started, str(device), root=str(samples.root))
