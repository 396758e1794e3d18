"""Export a trained run as a model bundle: two ONNX encoders and a manifest (the format:
:mod:`engine.bundle.format`).

The graphs are exported by :mod:`engine.export.onnx`, then onnxruntime is compared with PyTorch on real
inputs (:mod:`engine.export.parity`); a relative difference above ``tolerance`` fails the export and
nothing is written. A smaller fp16 or int8 variant is :mod:`engine.export.variants`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from engine.bundle.format import AUDIO_FILE, IMAGE_FILE, MANIFEST_FILE, load_bundle, write_manifest
from engine.checkpoint import LoadedRun, load_encoders
from engine.export.onnx import OPSET, AudioInput, ExportError, ImageInput, export_onnx
from engine.export.parity import DEFAULT_TOLERANCE, measure_parity, parity_inputs
from engine.export.variants import make_variant
from engine.models import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
IMAGE_RESIZE_RULE = "largest centred square, then Pillow bilinear (antialiased) resize to size x size"


def trained_on(run: LoadedRun, which: str) -> dict[str, Any]:
    """The manifest's ``trained_on``: the dataset ``train`` recorded (path, kind, audio source, split rule,
    pairs per split), the preset, and the checkpoint's epoch, step and validation metrics."""
    from engine.data.source import dataset_kind

    dataset = run.config.get("dataset") or {}
    path, layout = dataset.get("path"), dataset.get("layout")
    kind = dataset.get("kind")  # recorded by train; older runs: told from the data when it is here
    if kind is None and layout and path and (layout == "soundingearth" or Path(path).exists()):
        kind = dataset_kind(path, layout)
    return {"data": path, "kind": kind, "audio_source": dataset.get("audio_source"),
            "split_rule": dataset.get("split_rule"), "pairs": dataset.get("pairs"),
            "preset": run.config.get("preset"), "epochs": run.checkpoint.get("epoch"),
            "step": run.checkpoint.get("step"), "metrics": run.checkpoint.get("metrics"),
            "run": str(run.run_dir.resolve()), "checkpoint": which}


def _prepare_out(out: Path) -> Path:
    """Refuse to overwrite anything but a bundle; return the temporary folder to write into."""
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST_FILE).is_file():
        raise ExportError(out, "folder exists and is not a model bundle", "choose a new --out folder")
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def export_bundle(run_dir: str | Path, out: str | Path, checkpoint: str = "best", precision: str = "fp32",
                  audio_files: list[str | Path] | None = None, ground_size_m: float | None = None,
                  tolerance: float = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """Export a run as a model bundle folder.

    Args:
        run_dir: the run folder (config.json, checkpoints/).
        out: the bundle folder to write (replaced if it is a bundle; refused if it holds other files).
        checkpoint: ``best`` or ``last``.
        precision: ``fp32``, or ``fp16`` / ``int8`` for a smaller (int8: faster) variant; the fp32 export is
            checked first, then the variant's difference and its retrieval change are measured.
        audio_files: extra real recordings for the parity check.
        ground_size_m: ground width of a training image in metres (default: the run's
            ``data.ground_size_m`` if recorded), used as the atlas's default tile size.
        tolerance: the largest relative onnxruntime-vs-PyTorch difference accepted for fp32.

    Returns:
        The manifest written.

    Raises:
        ExportError: export, checker or parity failure (nothing is written); CheckpointError: bad run.
    """
    if precision not in PRECISIONS:
        raise ExportError("--precision", f"unknown precision {precision!r}", f"use one of {PRECISIONS}")
    out = Path(out)
    run = load_encoders(run_dir, checkpoint)
    tmp = _prepare_out(out)
    try:
        cfg, fe = run.model, run.front_end
        s = cfg.image_size
        export_onnx(ImageInput(run.image_encoder), torch.zeros(2, s, s, 3, dtype=torch.uint8), tmp / IMAGE_FILE,
                    "image", {0: "batch"})
        export_onnx(AudioInput(run.audio_encoder), torch.zeros(2, 1, fe.n_mels, fe.chunk_frames),
                    tmp / AUDIO_FILE, "log_mel", {0: "batch", 3: "frames"})
        inputs = parity_inputs(run, [Path(p) for p in audio_files or []])
        parity = measure_parity(run, tmp / IMAGE_FILE, tmp / AUDIO_FILE, inputs)
        worst = max(parity["image"]["max_relative_difference"], parity["audio"]["max_relative_difference"])
        parity["tolerance"] = tolerance
        if not worst <= tolerance:
            raise ExportError(out, f"onnxruntime differs from PyTorch by {worst:.2e} (relative), above "
                              f"{tolerance:g}; nothing was written", "report this with the run's config.json")
        variant = None
        if precision != "fp32":
            variant = make_variant(run, tmp, precision, inputs)
        data = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
        ground = ground_size_m if ground_size_m is not None else data.get("ground_size_m")
        manifest = write_manifest(tmp, _manifest_body(run, checkpoint, precision, parity, variant, ground))
        load_bundle(tmp)  # the bundle must validate as the app will see it
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log.info("bundle %s written to %s (parity %.1e)", manifest["bundle_id"][:12], out, worst)
    return manifest


def _manifest_body(run: LoadedRun, which: str, precision: str, parity: dict[str, Any],
                   variant: dict[str, Any] | None, ground_size_m: float | None) -> dict[str, Any]:
    cfg, fe = run.model, run.front_end
    body: dict[str, Any] = {
        "embedding_dim": cfg.embed_dim,
        "distance": cfg.distance,
        "precision": precision,
        "image": {"input": "image", "output": "embedding", "size": cfg.image_size, "layout": "NHWC",
                  "dtype": "uint8", "channels": "RGB", "arch": cfg.image_arch, "width": cfg.image_width,
                  "normalisation": {"scale": 1 / 255, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                                    "inside_graph": True},
                  "resize": IMAGE_RESIZE_RULE,
                  "ground_size_m": float(ground_size_m) if ground_size_m else None},
        "audio": {"input": "log_mel", "output": "embedding", "layout": "N1FT", "dtype": "float32",
                  "n_mels": fe.n_mels, "arch": cfg.audio_arch, "width": cfg.audio_width,
                  "front_end": fe.to_dict(),
                  "chunk_rule": {"chunk_frames": fe.chunk_frames, "hop_frames": fe.chunk_hop_frames,
                                 "chunk_seconds": fe.chunk_seconds, "hop_seconds": fe.chunk_hop_seconds,
                                 "max_chunks": fe.max_chunks, "min_seconds": fe.min_seconds,
                                 "rule": "clips up to one chunk whole; longer clips in chunks every hop, a "
                                         "remainder of at least half a chunk adds one chunk aligned to the end; "
                                         "more than max_chunks thinned to evenly spaced ones"},
                  "aggregate": "mean"},
        "l2_normalised": cfg.l2_normalise,
        "trained_on": trained_on(run, which),
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "exporter": {"method": "torch.onnx.export(dynamo=True)", "opset": OPSET, "torch": torch.__version__},
        "parity": parity,
    }
    if variant is not None:
        body["variant"] = variant
    imported = run.config.get("imported")
    if isinstance(imported, dict):  # weights made elsewhere (engine.interop): whose they are, what inputs they need
        body["weights"] = {k: v for k, v in imported.items() if k != "conventions"}
        body["conventions"] = imported.get("conventions")
    return body


def summary_line(manifest: dict[str, Any], out: Path) -> str:
    """A one-line description of an exported bundle for the command line."""
    p = manifest["parity"]
    return (f"{out}: bundle {manifest['bundle_id'][:12]} ({manifest['precision']}, {manifest['embedding_dim']}-d, "
            f"image {manifest['image']['size']} px), onnxruntime vs PyTorch: image "
            f"{p['image']['max_relative_difference']:.1e}, audio {p['audio']['max_relative_difference']:.1e}"
            + (f"; {json.dumps(manifest['variant'].get('retrieval_change'))}" if manifest.get("variant") else ""))
