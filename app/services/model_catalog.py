"""The models the app knows: the shipped demo model, the ones trained here and the ones the user opened.

Each is read from its bundle's ``manifest.json`` (name, export date, what it was trained on and its
validation metrics) without loading the ONNX files, so the list is cheap to show. Qt-free.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """One model bundle as the model list shows it.

    Attributes:
        path: the bundle folder (resolved).
        kind: "shipped", "trained" or "opened".
        name: the folder's name.
        date: export date (``YYYY-MM-DD HH:MM``) or "".
        trained_on: a short description of the training data ("demo-world, 1,400 pairs, demo-cpu, 25 epochs").
        metrics: validation R@10 both ways, or None when the manifest has none.
        bundle_id: the manifest's bundle id.
        ground_m_per_px: ground metres per model input pixel in training, or None.
        ground_size_m: the ground width of one training image (a natural tile size), or None.
    """

    path: Path
    kind: str
    name: str
    date: str
    trained_on: str
    metrics: dict[str, float] | None
    bundle_id: str
    ground_m_per_px: float | None
    ground_size_m: float | None = None

    def metrics_text(self) -> str:
        """'val R@10 image→audio 0.37, audio→image 0.38' or 'no validation metrics'."""
        m = self.metrics
        if not m:
            return "no validation metrics"
        parts = []
        if "i2a_r10" in m:
            parts.append(f"image→audio {m['i2a_r10']:.2f}")
        if "a2i_r10" in m:
            parts.append(f"audio→image {m['a2i_r10']:.2f}")
        return "val R@10 " + ", ".join(parts) if parts else "no validation metrics"


def read_model_info(path: str | Path, kind: str) -> ModelInfo | None:
    """The :class:`ModelInfo` of a bundle folder, or None when its manifest cannot be read."""
    path = Path(path).resolve()
    try:
        manifest: Any = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.info("%s: not a readable bundle (%s)", path, err)
        return None
    if not isinstance(manifest, dict):
        return None
    trained = manifest.get("trained_on") or {}
    image = manifest.get("image") or {}
    return ModelInfo(path=path, kind=kind, name=path.name, date=_date(manifest.get("exported_at")),
                     trained_on=describe_training(trained), metrics=validation_metrics(trained),
                     bundle_id=str(manifest.get("bundle_id") or ""),
                     ground_m_per_px=training_resolution(image),
                     ground_size_m=float(image["ground_size_m"]) if isinstance(image.get("ground_size_m"),
                                                                                (int, float)) else None)


def _date(value: Any) -> str:
    text = str(value or "")
    return text[:16].replace("T", " ") if text else ""


def describe_training(trained: dict[str, Any]) -> str:
    """What a bundle was trained on, in a few words (from the manifest's ``trained_on``)."""
    if not trained:
        return "unknown data"
    parts = [str(trained.get("kind") or Path(str(trained.get("data") or "?")).name)]
    pairs = trained.get("pairs")
    if isinstance(pairs, dict) and isinstance(pairs.get("train"), int):
        parts.append(f"{pairs['train']:,} training pairs")
    if trained.get("preset"):
        parts.append(f"preset {trained['preset']}")
    if trained.get("epochs"):
        parts.append(f"{trained['epochs']} epochs")
    return ", ".join(parts)


def validation_metrics(trained: dict[str, Any]) -> dict[str, float] | None:
    """Validation R@10 both ways (``i2a_r10``, ``a2i_r10``) from ``trained_on.metrics.val``, or None."""
    val = ((trained.get("metrics") or {}).get("val") or {}) if isinstance(trained, dict) else {}
    out: dict[str, float] = {}
    for key, direction in (("i2a_r10", "image_to_audio"), ("a2i_r10", "audio_to_image")):
        value = (val.get(direction) or {}).get("R@10")
        if isinstance(value, (int, float)) and value == value:
            out[key] = float(value)
    return out or None


def training_resolution(image: dict[str, Any]) -> float | None:
    """Ground metres per model input pixel in training: ``image.ground_size_m / image.size``."""
    ground, size = image.get("ground_size_m"), image.get("size")
    if isinstance(ground, (int, float)) and isinstance(size, int) and ground > 0 and size > 0:
        return float(ground) / size
    return None


def list_models(shipped: Path, data_dir: Path, opened: Iterable[str | Path] = ()) -> list[ModelInfo]:
    """The shipped model first, then the trained ones (newest first), then the opened ones; no duplicates."""
    found: list[ModelInfo] = []
    seen: set[Path] = set()

    def add(path: Path, kind: str) -> None:
        resolved = Path(path).resolve()
        if resolved in seen:
            return
        info = read_model_info(resolved, kind)
        if info is not None:
            seen.add(resolved)
            found.append(info)

    add(shipped, "shipped")
    bundles = data_dir / "bundles"
    if bundles.is_dir():
        for p in sorted((p for p in bundles.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
            add(p, "trained")
    for p in opened:
        add(Path(p), "opened")
    return found
