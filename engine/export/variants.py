"""Smaller bundle variants: fp16 weights or int8 (static, per-channel QDQ) quantisation.

A variant is made from the checked fp32 export; its own difference from PyTorch is measured on the
same parity inputs, and, when the run's data is on this machine, the change in cross-modal
retrieval (fp32 bundle vs variant, both through onnxruntime) on exactly the validation pairs ``train``
validated on: the run's dataset read with its own data config and split rule, images by their
evaluation view and clips whole by the chunk rule (as ``evaluate`` does), ranked by
:func:`engine.evaluate.retrieval_metrics` with the paper protocol (as ``train``'s validation does).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from engine.bundle.format import AUDIO_FILE, IMAGE_FILE
from engine.checkpoint import LoadedRun
from engine.errors import UserInputError
from engine.export.onnx import ImageInput
from engine.export.parity import ParityInputs, relative_difference, run_dataset

log = logging.getLogger(__name__)



def _to_fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


class _Feed:
    """onnxruntime's calibration reader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # not needed by the MinMax calibrator
        pass


def _to_int8(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Feed, CalibrationDataReader):
        pass

    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    # Convolutions only: they hold nearly all weights and time; the input scaling and the small
    # embedding head stay in float (quantising them too doubled the error in our measurements).
    quantize_static(str(pre), str(dst), Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, op_types_to_quantize=["Conv"])
    pre.unlink(missing_ok=True)


class _Sessions:
    """An image and an audio onnxruntime session embedding inputs as a bundle does."""

    def __init__(self, image_model: Path, audio_model: Path, front_end) -> None:
        import onnxruntime as ort

        self.image = ort.InferenceSession(str(image_model), providers=["CPUExecutionProvider"])
        self.audio = ort.InferenceSession(str(audio_model), providers=["CPUExecutionProvider"])
        self.front_end = front_end

    def embed_clip(self, mel: np.ndarray) -> np.ndarray:
        from engine.audio import chunk_log_mel

        chunks = np.ascontiguousarray(chunk_log_mel(mel, self.front_end), dtype=np.float32)
        return self.audio.run(["embedding"], {"log_mel": chunks})[0].mean(0)


def validation_retrieval(run: LoadedRun, sessions: dict[str, _Sessions]) -> dict[str, Any] | None:
    """Embed the run's validation pairs with each set of sessions and rank them (paper protocol).

    Returns:
        ``{"pairs", "split_rule", "data", "skipped", name: {gallery, protocol, image_to_audio, audio_to_image}}``
        with the metrics ``train`` logs for validation, or None when the run's data is not on this machine
        or its validation split has fewer than 2 readable pairs.
    """
    from engine.config.run import RunConfig
    from engine.embedding import eval_view_uint8
    from engine.evaluate import retrieval_metrics, validation_summary
    from engine.train.data import clip_loader, open_run_data

    path = run_dataset(run.config)
    if path is None:
        return None
    cfg = RunConfig.from_dict(run.config)
    cfg = cfg.replace("data", num_workers=0)
    try:
        data = open_run_data(path, cfg, use_cache=False)
    except UserInputError as err:
        log.warning("retrieval check: the run's data cannot be read (%s)", err)
        return None
    embeddings: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {name: ([], []) for name in sessions}
    lon, lat, skipped = [], [], 0
    for batch in clip_loader(data, "val", cfg):
        skipped += len(batch["skipped"])
        if not batch["size"]:
            continue
        views = eval_view_uint8(batch["image"], cfg.model.image_size, cfg.augment.eval_scale)
        clips = [np.asarray(c).reshape(c.shape[-2], c.shape[-1]) for c in batch["audio"]]
        for name, s in sessions.items():
            embeddings[name][0].append(s.image.run(["embedding"], {"image": views})[0])
            embeddings[name][1].append(np.stack([s.embed_clip(mel) for mel in clips]))
        lon.append(batch["lon"].numpy())
        lat.append(batch["lat"].numpy())
    n = sum(len(x) for x in lon)
    if n < 2:
        log.warning("retrieval check: %d readable validation pairs; not measured", n)
        return None
    out: dict[str, Any] = {"pairs": n, "split_rule": data.source.split_rule, "data": str(data.source.table),
                           "skipped": skipped}
    for name, (images, audios) in embeddings.items():
        out[name] = validation_summary(retrieval_metrics(np.concatenate(images), np.concatenate(audios),
                                                         np.concatenate(lon), np.concatenate(lat), protocol="paper"))
    return out


def make_variant(run: LoadedRun, folder: Path, precision: str, inputs: ParityInputs) -> dict[str, Any]:
    """Replace the fp32 encoders in ``folder`` by their ``precision`` variant; return the report that goes
    into the manifest's ``variant``."""
    from engine.audio import chunk_log_mel

    fp32 = {name: folder / f"fp32_{name}" for name in (IMAGE_FILE, AUDIO_FILE)}
    for name, path in fp32.items():
        (folder / name).rename(path)
    chunks = [np.ascontiguousarray(chunk_log_mel(m, run.front_end)) for m in inputs.log_mels]
    if precision == "fp16":
        for name, path in fp32.items():
            _to_fp16(path, folder / name)
        method = "onnxruntime float16 conversion (inputs and outputs kept uint8/float32)"
    else:
        _to_int8(fp32[IMAGE_FILE], folder / IMAGE_FILE,
                 [{"image": inputs.images[i:i + 4]} for i in range(0, len(inputs.images), 4)])
        _to_int8(fp32[AUDIO_FILE], folder / AUDIO_FILE, [{"log_mel": c} for c in chunks])
        method = "onnxruntime static quantisation of the convolutions, QDQ, per-channel int8 weights, uint8 " \
                 "activations, MinMax calibration on the parity inputs"
    import onnxruntime as ort
    import torch

    img_s = ort.InferenceSession(str(folder / IMAGE_FILE), providers=["CPUExecutionProvider"])
    aud_s = ort.InferenceSession(str(folder / AUDIO_FILE), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref_img = ImageInput(run.image_encoder)(torch.from_numpy(inputs.images)).numpy()
        diff_img = relative_difference(img_s.run(["embedding"], {"image": inputs.images})[0], ref_img)
        diff_aud = max(relative_difference(aud_s.run(["embedding"], {"log_mel": c})[0],
                                           run.audio_encoder(torch.from_numpy(c)).numpy()) for c in chunks)
    report: dict[str, Any] = {"precision": precision, "method": method,
                              "difference_vs_pytorch": {"image": diff_img, "audio": diff_aud},
                              "bytes": {name: (folder / name).stat().st_size for name in (IMAGE_FILE, AUDIO_FILE)},
                              "fp32_bytes": {name: p.stat().st_size for name, p in fp32.items()}}
    retrieval = validation_retrieval(run, {"fp32": _Sessions(fp32[IMAGE_FILE], fp32[AUDIO_FILE], run.front_end),
                                           precision: _Sessions(folder / IMAGE_FILE, folder / AUDIO_FILE,
                                                                run.front_end)})
    if retrieval is None:
        report["retrieval_change"] = None
        report["retrieval_note"] = ("the run's data is not on this machine (or has under 2 readable validation "
                                    "pairs); retrieval change not measured")
    else:
        base, var = retrieval["fp32"], retrieval[precision]
        report["retrieval_change"] = {
            direction: {k: var[direction][k] - base[direction][k] for k in base[direction]}
            for direction in ("image_to_audio", "audio_to_image")}
        report["retrieval"] = retrieval
    for path in fp32.values():
        path.unlink()
    return report
