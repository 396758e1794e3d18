"""Smaller bundle variants: fp16 weights or int8 (static, per-channel QDQ) quantisation.

A variant is made from the checked fp32 export; its own difference from PyTorch is measured on the
same parity inputs, and, when the run's data is on this machine, the change in cross-modal
retrieval on the validation rows (fp32 bundle vs variant, both through onnxruntime).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from engine.checkpoint import LoadedRun
from engine.errors import UserInputError
from engine.formats.bundle import AUDIO_FILE, IMAGE_FILE

log = logging.getLogger(__name__)

MAX_VALIDATION_PAIRS = 1000


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


def retrieval_summary(image_emb: np.ndarray, audio_emb: np.ndarray, distance: str) -> dict[str, Any]:
    """R@1, R@10 and median rank of the true partner, both directions.

    A query's rank is the number of gallery items strictly closer than its partner (0 = first), so
    R@k = share of ranks < k (as the paper counts) and the median rank is reported 1-based.
    """
    if distance == "cosine":
        a = image_emb / np.maximum(np.linalg.norm(image_emb, axis=1, keepdims=True), 1e-12)
        b = audio_emb / np.maximum(np.linalg.norm(audio_emb, axis=1, keepdims=True), 1e-12)
        d = 1.0 - a @ b.T
    else:
        d = np.sqrt(np.maximum((image_emb ** 2).sum(1)[:, None] - 2 * image_emb @ audio_emb.T
                               + (audio_emb ** 2).sum(1)[None, :], 0))
    out = {}
    for name, m in (("image_to_audio", d), ("audio_to_image", d.T)):
        ranks = (m < np.diag(m)[:, None]).sum(axis=1)
        out[name] = {"R@1": float((ranks < 1).mean()), "R@10": float((ranks < 10).mean()),
                     "median_rank": float(np.median(ranks) + 1)}
    return out


def validation_rows(table_path: Path) -> tuple[list, str]:
    """The validation rows of the run's table and the rule used to pick them."""
    from engine.atlas.recordings import read_recording_table

    table = read_recording_table(table_path)
    rows = [r for r in table.rows if r.image is not None and r.image.is_file()]
    if any(r.split for r in rows):
        chosen, rule = [r for r in rows if (r.split or "").lower() in ("val", "validation")], "split column = val"
    elif table.kind == "soundingearth":
        chosen, rule = [r for r in rows if r.id.rsplit("_", 1)[-1].isdigit()
                        and int(r.id.rsplit("_", 1)[-1]) % 10 == 7], "paper split: key % 10 == 7"
    else:
        chosen, rule = rows[7::10], "every 10th row from the 8th (the table has no split column)"
    return chosen[:MAX_VALIDATION_PAIRS], rule


def _embed_pairs(rows: list, image_model: Path, audio_model: Path, size: int, fe) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    from engine.audio import chunk_log_mel, file_log_mel
    from engine.runtime.images import prepare_image, read_image_file

    img_s = ort.InferenceSession(str(image_model), providers=["CPUExecutionProvider"])
    aud_s = ort.InferenceSession(str(audio_model), providers=["CPUExecutionProvider"])
    imgs, auds = [], []
    for row in rows:
        try:
            image = prepare_image(read_image_file(row.image), size, row.image)
            mel = file_log_mel(row.audio, fe)
        except UserInputError as err:
            log.warning("retrieval check: skipping %s", err)
            continue
        imgs.append(img_s.run(["embedding"], {"image": image[None]})[0][0])
        auds.append(aud_s.run(["embedding"], {"log_mel": chunk_log_mel(mel, fe)})[0].mean(0))
    return np.array(imgs, np.float32), np.array(auds, np.float32)


def make_variant(run: LoadedRun, folder: Path, precision: str, inputs) -> dict[str, Any]:
    """Replace the fp32 encoders in ``folder`` by their ``precision`` variant; return the report that goes
    into the manifest's ``variant``."""
    from engine.audio import chunk_log_mel
    from engine.export import ImageInput, data_table, relative_difference

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
    table = data_table(run.config)
    if table is None:
        report["retrieval_change"] = None
        report["retrieval_note"] = "the run's data is not on this machine; retrieval change not measured"
    else:
        rows, rule = validation_rows(table)
        size, fe = run.model.image_size, run.front_end
        base = retrieval_summary(*_embed_pairs(rows, fp32[IMAGE_FILE], fp32[AUDIO_FILE], size, fe),
                                 run.model.distance)
        var_img, var_aud = _embed_pairs(rows, folder / IMAGE_FILE, folder / AUDIO_FILE, size, fe)
        var = retrieval_summary(var_img, var_aud, run.model.distance)
        report["retrieval_change"] = {
            direction: {k: var[direction][k] - base[direction][k] for k in base[direction]}
            for direction in base}
        report["retrieval"] = {"fp32": base, precision: var, "pairs": int(len(var_img)), "rows": rule,
                               "table": str(table)}
    for path in fp32.values():
        path.unlink()
    return report
