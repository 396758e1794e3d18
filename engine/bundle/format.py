"""The model bundle: a folder with two ONNX encoders and ``manifest.json`` (torch-free).

Layout (written by ``soundscape-engine export``, :mod:`engine.export`)::

    BUNDLE/image_encoder.onnx   input "image": uint8 (N, S, S, 3) RGB as decoded (the graph casts, scales
                                and normalises); output "embedding" float32 (N, D); only N is dynamic
    BUNDLE/audio_encoder.onnx   input "log_mel": float32 (N, 1, n_mels, T), the front-end's normalised
                                log-mel chunks; output "embedding" (N, D); N and T are dynamic
    BUNDLE/manifest.json        see below

``manifest.json``: ``format: "soundscape-bundle"``, ``format_version: 1``, ``embedding_dim``, ``distance``
(``euclidean`` or ``cosine``), ``precision`` (``fp32``/``fp16``/``int8``), ``image`` (``input``, ``size``,
``layout: "NHWC"``, ``dtype: "uint8"``, ``arch``, ``normalisation``, ``resize``, ``ground_size_m``: the
ground width of the evaluation view a training image gave the encoder, or null; an atlas cuts its tiles at
that width by default), ``audio`` (``input``, ``front_end``: the full
:class:`~engine.config.front_end.FrontEndConfig`, ``chunk_rule``, ``aggregate: "mean"``, ``arch``),
``trained_on`` (the run's dataset, kind, audio source, split rule, pairs per split, preset, epoch, step,
metrics, run, checkpoint), ``exported_at``, ``exporter``, ``l2_normalised``, ``files`` (sha256 of each
.onnx), ``parity`` (the measured onnxruntime-vs-PyTorch difference and on what inputs), ``variant``
(fp16/int8 only: difference, sizes, retrieval change on the run's validation pairs) and ``bundle_id``.

``bundle_id`` is the sha256 of the text ``"<name>:<sha256>\\n"`` over the files sorted by name, so it
changes exactly when an encoder file changes. An atlas records it. Images of another size reach S x S by
:func:`engine.inference.images.prepare_image`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.audio import FrontEndConfig
from engine.errors import BundleError, ConfigError
from engine.files import atomic_write_text, json_safe, read_manifest

BUNDLE_FORMAT = "soundscape-bundle"
BUNDLE_VERSION = 1
IMAGE_FILE = "image_encoder.onnx"
AUDIO_FILE = "audio_encoder.onnx"
MANIFEST_FILE = "manifest.json"
MODEL_FILES = (IMAGE_FILE, AUDIO_FILE)
_REQUIRED_KEYS = ("embedding_dim", "distance", "image", "audio", "files", "bundle_id")


def sha256_file(path: str | Path, block: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_id_of(files: dict[str, str]) -> str:
    """The bundle id: sha256 of ``"<name>:<sha256>\\n"`` over the files sorted by name."""
    text = "".join(f"{name}:{files[name]}\n" for name in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A validated model bundle.

    Attributes:
        path: the bundle folder.
        manifest: the parsed manifest.json (all fields, including ones this version ignores).
        bundle_id: the id an atlas records.
        embedding_dim: D.
        distance: ``"euclidean"`` or ``"cosine"``.
        image_size: S, the side of the square uint8 RGB input.
        ground_size_m: the ground width a training image covered, or None.
        front_end: the audio front-end the audio encoder was trained with (chunk rule included).
    """

    path: Path
    manifest: dict[str, Any]
    bundle_id: str
    embedding_dim: int
    distance: str
    image_size: int
    ground_size_m: float | None
    front_end: FrontEndConfig

    @property
    def image_model(self) -> Path:
        return self.path / IMAGE_FILE

    @property
    def audio_model(self) -> Path:
        return self.path / AUDIO_FILE

    @property
    def short_id(self) -> str:
        return self.bundle_id[:12]

    def describe(self) -> str:
        """One line for status bars and logs."""
        trained = self.manifest.get("trained_on") or {}
        what = trained.get("preset") or trained.get("kind") or "unknown data"
        return (f"{self.path.name} ({self.manifest['image'].get('arch', '?')}, {self.embedding_dim}-d, "
                f"{self.manifest.get('precision', 'fp32')}, trained on {what}, id {self.short_id})")


def load_bundle(path: str | Path, verify_hashes: bool = True) -> Bundle:
    """Open and validate a model bundle folder.

    Args:
        path: the bundle folder (or its manifest.json).
        verify_hashes: check each .onnx file against its sha256 in the manifest (a full read of each
            file; turn off only for a bundle just verified).

    Returns:
        The :class:`Bundle`.

    Raises:
        BundleError: missing folder, manifest or model file; unreadable or incomplete manifest;
            another format or an unknown version; a file whose hash differs from the manifest.
    """
    path = Path(path)
    if path.name == MANIFEST_FILE:
        path = path.parent
    if not path.is_dir():
        raise BundleError(path, "model bundle not found", "name a folder made by 'soundscape-engine export'")
    manifest_path = path / MANIFEST_FILE
    manifest = read_manifest(manifest_path, BUNDLE_FORMAT, (BUNDLE_VERSION,), BundleError, what="a model bundle",
                             version_key="format_version", make="name a folder made by 'soundscape-engine export'",
                             redo="re-export the bundle with this version of Soundscape Mapper, or update "
                                  "Soundscape Mapper")
    missing_keys = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing_keys:
        raise BundleError(manifest_path, f"manifest lacks {missing_keys}", "re-export the bundle")
    files = manifest["files"]
    for name in MODEL_FILES:
        if not isinstance(files, dict) or name not in files:
            raise BundleError(manifest_path, f"manifest lists no hash for {name}", "re-export the bundle")
        if not (path / name).is_file():
            raise BundleError(path / name, "model file missing from the bundle",
                              "copy the whole bundle folder again, or re-export it")
    if bundle_id_of({n: files[n] for n in MODEL_FILES}) != manifest["bundle_id"]:
        raise BundleError(manifest_path, "bundle_id does not match the file hashes it lists",
                          "the manifest was edited; re-export the bundle")
    if verify_hashes:
        for name in MODEL_FILES:
            if sha256_file(path / name) != files[name]:
                raise BundleError(path / name, "sha256 differs from the manifest (damaged or replaced file)",
                                  "copy the bundle folder again, or re-export it")
    try:
        front_end = FrontEndConfig.from_dict(manifest["audio"]["front_end"])
        image_size = int(manifest["image"]["size"])
        ground = manifest["image"].get("ground_size_m")
        bundle = Bundle(path=path.resolve(), manifest=manifest, bundle_id=str(manifest["bundle_id"]),
                        embedding_dim=int(manifest["embedding_dim"]), distance=str(manifest["distance"]),
                        image_size=image_size, ground_size_m=float(ground) if ground else None,
                        front_end=front_end)
    except ConfigError as err:
        raise BundleError(manifest_path, f"audio front-end: {err.problem}", err.fix) from None
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(manifest_path, f"malformed manifest ({type(err).__name__}: {err})",
                          "re-export the bundle") from None
    if bundle.distance not in ("euclidean", "cosine"):
        raise BundleError(manifest_path, f"unknown distance {bundle.distance!r}", "re-export the bundle")
    return bundle


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Fill in ``format``, ``format_version``, ``files`` (sha256 of each model) and ``bundle_id``, and
    write ``manifest.json`` into the bundle folder ``path``. Returns the manifest written."""
    path = Path(path)
    files = {name: sha256_file(path / name) for name in MODEL_FILES}
    full = {"format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, **manifest,
            "files": files, "bundle_id": bundle_id_of(files)}
    atomic_write_text(path / MANIFEST_FILE, json.dumps(json_safe(full), indent=2, allow_nan=False) + "\n")
    return full
