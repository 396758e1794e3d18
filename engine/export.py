"""Export a trained run as a model bundle: two ONNX encoders and a manifest (see
:mod:`engine.formats.bundle` and ``docs/ARCHITECTURE.md``).

The exporter is ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript; the TorchScript
exporter is deprecated in torch 2.11). Both graphs come out clean: BatchNorm folded into the
convolutions, opset pinned to :data:`OPSET`, only the batch axis (and the audio time axis) dynamic.
After export, ``onnx.checker`` runs and onnxruntime is compared with PyTorch on real inputs (the
run's own data when it is on this machine, else realistic synthetic images and the audio files
given); a relative difference above ``tolerance`` fails the export and nothing is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine.audio import FrontEndConfig, chunk_log_mel, samples_log_mel
from engine.checkpoint import LoadedRun, load_encoders
from engine.errors import UserInputError
from engine.formats.bundle import AUDIO_FILE, IMAGE_FILE, MANIFEST_FILE, load_bundle, write_manifest
from engine.models import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)

OPSET = 18
DEFAULT_TOLERANCE = 1e-4
PRECISIONS = ("fp32", "fp16", "int8")
IMAGE_RESIZE_RULE = "largest centred square, then Pillow bilinear (antialiased) resize to size x size"


class ExportError(UserInputError):
    """An export that cannot be made or fails its onnxruntime-vs-PyTorch check."""


class ImageInput(nn.Module):
    """The exported image graph: uint8 (N, S, S, 3) RGB -> cast, scale to [0, 1], NCHW -> encoder
    (which normalises with the ImageNet mean and std) -> (N, D)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image.permute(0, 3, 1, 2).to(torch.float32) * (1.0 / 255.0)).contiguous()
        return self.encoder(x)


class AudioInput(nn.Module):
    """The exported audio graph: float32 (N, 1, n_mels, T) normalised log-mel chunks -> (N, D)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.encoder(log_mel)


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path, input_name: str,
                dynamic: dict[int, str]) -> None:
    """Export ``module`` (eval mode) with one named input and output ``embedding``, the given axes dynamic.

    Raises:
        ExportError: the exporter or ``onnx.checker`` fails.
    """
    import onnx

    module.eval()
    shapes = {input_name: {axis: torch.export.Dim(name) for axis, name in dynamic.items()}}
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad(), \
                _quiet_loggers("onnxscript", "onnx_ir", "torch.onnx", "torch.export"):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(path), input_names=[input_name],
                              output_names=["embedding"], opset_version=OPSET, dynamo=True,
                              dynamic_shapes=shapes, optimize=True, verbose=False, external_data=False)
        model = onnx.load(str(path))
        strip_debug_metadata(model)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(path))
    except Exception as err:  # noqa: BLE001 - the exporter raises many types; the message says which
        raise ExportError(path, f"ONNX export failed ({type(err).__name__}: {str(err).splitlines()[0][:160]})",
                          "report this with the run's config.json") from None


def strip_debug_metadata(model) -> None:
    """Drop the exporter's per-node debug notes (the Python stack trace with this file's absolute path and
    line numbers, FX node text, name scopes) and doc strings, in place. They would make the bytes, and so
    the ``bundle_id``, depend on where the code was checked out: stripped, the same weights export to the
    same files."""
    for node in [*model.graph.node, *(n for f in model.functions for n in f.node)]:
        del node.metadata_props[:]
        node.doc_string = ""
    model.graph.doc_string = ""
    model.doc_string = ""


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    """The exporter's optimiser logs dozens of INFO lines per graph; keep them out of the CLI."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# ------------------------------------------------------------------------------- parity inputs

def run_dataset(config: dict[str, Any]) -> Path | None:
    """The dataset a run was trained on (``dataset.path`` in RUN/config.json, written by ``train``), if it
    is on this machine."""
    path = (config.get("dataset") or {}).get("path")
    if isinstance(path, str) and path and Path(path).exists():
        return Path(path)
    return None


def open_run_source(run: LoadedRun) -> tuple[Any, Any] | None:
    """The run's own dataset read as ``train`` read it (its data config, front-end and split rule):
    (:class:`engine.data.source.PairSource`, :class:`engine.train.config.RunConfig`), or None when the
    data is not on this machine or cannot be read any more."""
    from engine.data.source import open_source
    from engine.train.config import RunConfig

    path = run_dataset(run.config)
    if path is None:
        return None
    cfg = RunConfig.from_dict(run.config)
    try:
        from engine.campaign import is_campaign

        if is_campaign(path):  # a recorder campaign: its sites' chips and evaluation windows
            from engine.train.campaign_data import open_campaign

            return open_campaign(path, cfg), cfg
        return open_source(path, cfg.data, cfg.front_end), cfg
    except UserInputError as err:
        log.warning("the run's data cannot be read (%s); using synthetic inputs", err)
        return None


def _synthetic_images(n: int, size: int, seed: int) -> np.ndarray:
    """Aerial-like uint8 images: smooth colour fields (fields, water, woods) plus fine texture."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        coarse = rng.uniform(20, 235, (4, 4, 3)).astype(np.float32)
        field_ = np.stack([np.asarray(Image.fromarray(coarse[:, :, c]).resize((size, size), Image.Resampling.BICUBIC))
                           for c in range(3)], axis=2)
        texture = rng.normal(0, 18, (size, size, 3))
        out[i] = np.clip(field_ + texture, 0, 255).astype(np.uint8)
    return out


def _synthetic_log_mels(cfg: FrontEndConfig, seed: int) -> list[np.ndarray]:
    """Normalised log-mels of synthetic clips: band noise with tonal calls, and a clip with a quiet gap."""
    rng = np.random.default_rng(seed)
    rate = cfg.sample_rate
    t = np.arange(int(7.3 * rate)) / rate
    calls = np.sin(2 * np.pi * (2500 + 800 * np.sin(2 * np.pi * 3 * t)) * t) * (np.sin(2 * np.pi * 0.7 * t) > 0.6)
    clips = [0.05 * rng.standard_normal(t.size) + 0.3 * calls,
             np.convolve(rng.standard_normal(int(12.1 * rate)), np.ones(32) / 32, mode="same")]
    clips[1][rate * 4:rate * 5] *= 0.01
    return [samples_log_mel(c.astype(np.float32), rate, cfg, source="synthetic clip") for c in clips]


@dataclass
class ParityInputs:
    images: np.ndarray  # (n, S, S, 3) uint8
    log_mels: list[np.ndarray]  # normalised (n_mels, T)
    description: str


def parity_inputs(run: LoadedRun, audio_files: list[Path], n_images: int = 8, seed: int = 0) -> ParityInputs:
    """Real inputs for the onnxruntime-vs-PyTorch check: the run's own validation pairs (their
    evaluation view and whole log-mels, decoded as ``train`` and ``evaluate`` decode them) when its data
    is on this machine, else synthetic aerial-like images; plus ``audio_files`` (e.g. real field
    recordings) and, when no audio is available, synthetic clips."""
    from engine.audio import file_log_mel
    from engine.embedding import eval_view_uint8

    size, fe = run.model.image_size, run.front_end
    images: list[np.ndarray] = []
    log_mels: list[np.ndarray] = []
    parts = []
    opened = open_run_source(run)
    if opened is not None:
        source, cfg = opened
        order = source.indices("val") + source.indices("train") + source.indices("test")
        for i in order:
            if len(images) >= n_images and len(log_mels) >= 3:
                break
            try:
                if len(images) < n_images:
                    region = torch.from_numpy(np.array(source.image(i))).permute(2, 0, 1)[None]
                    images.append(eval_view_uint8(region, size, cfg.augment.eval_scale)[0])
                if len(log_mels) < 3:
                    log_mels.append(source.log_mel(i))
            except UserInputError as err:
                log.warning("parity inputs: skipping %s", err)
        if images or log_mels:
            parts.append(f"{len(images)} images and {len(log_mels)} recordings of {source.table}")
    n_real = len(images)
    if n_real < n_images:
        images.extend(_synthetic_images(n_images - n_real, size, seed))
        parts.append(f"{n_images - n_real} synthetic images")
    given = []
    for path in audio_files:
        try:
            log_mels.append(file_log_mel(path, fe))
            given.append(Path(path).name)
        except UserInputError as err:
            log.warning("parity inputs: skipping %s", err)
    if given:
        parts.append(f"{len(given)} given recordings ({', '.join(given[:4])}{' ...' if len(given) > 4 else ''})")
    if not log_mels:
        log_mels = _synthetic_log_mels(fe, seed)
        parts.append(f"{len(log_mels)} synthetic clips")
    return ParityInputs(np.stack(images[:n_images]), log_mels, "; ".join(parts))


def relative_difference(result: np.ndarray, reference: np.ndarray) -> float:
    """max |result - reference| / max |reference| (0 when both are zero)."""
    scale = float(np.abs(reference).max())
    return float(np.abs(result - reference).max() / scale) if scale > 0 else float(np.abs(result).max())


def _ort_session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def measure_parity(run: LoadedRun, image_model: Path, audio_model: Path, inputs: ParityInputs) -> dict[str, Any]:
    """Run both encoders in PyTorch and in onnxruntime on ``inputs``; return the relative differences.

    The audio check runs every chunk of every clip (the batch axis) and, to exercise the dynamic time
    axis, each clip's first 301 frames and the whole clip when it is at most two chunks long.
    """
    image_session, audio_session = _ort_session(image_model), _ort_session(audio_model)
    with torch.no_grad():
        torch_img = ImageInput(run.image_encoder)(torch.from_numpy(inputs.images)).numpy()
        ort_img = image_session.run(["embedding"], {"image": inputs.images})[0]
        single = image_session.run(["embedding"], {"image": inputs.images[:1]})[0]
        image_diff = max(relative_difference(ort_img, torch_img), relative_difference(single, torch_img[:1]))
        audio_diff = 0.0
        n_batches = 0
        for mel in inputs.log_mels:
            batches = [chunk_log_mel(mel, run.front_end), mel[None, None, :, :301]]
            if mel.shape[1] <= 2 * run.front_end.chunk_frames:
                batches.append(mel[None, None])
            for batch in batches:
                batch = np.ascontiguousarray(batch, dtype=np.float32)
                ref = run.audio_encoder(torch.from_numpy(batch)).numpy()
                got = audio_session.run(["embedding"], {"log_mel": batch})[0]
                audio_diff = max(audio_diff, relative_difference(got, ref))
                n_batches += 1
    return {"image": {"max_relative_difference": image_diff, "images": int(len(inputs.images))},
            "audio": {"max_relative_difference": audio_diff, "clips": len(inputs.log_mels), "batches": n_batches},
            "inputs": inputs.description}


# ------------------------------------------------------------------------------------------ export

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
            from engine.export_variants import make_variant

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
    return body


def summary_line(manifest: dict[str, Any], out: Path) -> str:
    """A one-line description of an exported bundle for the command line."""
    p = manifest["parity"]
    return (f"{out}: bundle {manifest['bundle_id'][:12]} ({manifest['precision']}, {manifest['embedding_dim']}-d, "
            f"image {manifest['image']['size']} px), onnxruntime vs PyTorch: image "
            f"{p['image']['max_relative_difference']:.1e}, audio {p['audio']['max_relative_difference']:.1e}"
            + (f"; {json.dumps(manifest['variant'].get('retrieval_change'))}" if manifest.get("variant") else ""))
