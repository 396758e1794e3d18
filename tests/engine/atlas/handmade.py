"""Fixtures for atlas tests, written in the real formats by seeded code (no torch):

- a model bundle of two tiny hand-made ONNX graphs whose embeddings have a known answer: an image's
  embedding is ``W_img.T @ (mean RGB / 255)`` and a log-mel chunk's is ``W_aud.T @ (its mean over time)``;
- GeoTIFFs in a chosen CRS with nodata borders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import rasterio
from onnx import TensorProto, helper, numpy_helper
from rasterio.transform import Affine

from engine.audio import FrontEndConfig
from engine.bundle.format import AUDIO_FILE, IMAGE_FILE, write_manifest


@dataclass(frozen=True)
class HandmadeBundle:
    path: Path
    w_image: np.ndarray  # (3, D)
    w_audio: np.ndarray  # (n_mels, D)

    def image_embedding(self, mean_rgb_0_255: np.ndarray) -> np.ndarray:
        return (np.asarray(mean_rgb_0_255, np.float64) / 255.0) @ self.w_image

    def chunk_embedding(self, chunk: np.ndarray) -> np.ndarray:
        return chunk.mean(axis=1) @ self.w_audio


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def make_bundle(folder: Path, seed: int = 0, dim: int = 8, image_size: int = 32,
                ground_size_m: float | None = None, distance: str = "euclidean",
                trained_on: dict | None = None) -> HandmadeBundle:
    folder.mkdir(parents=True, exist_ok=True)
    fe = FrontEndConfig()
    rng = np.random.default_rng(seed)
    w_image = rng.normal(size=(3, dim)).astype(np.float32)
    w_audio = (rng.normal(size=(fe.n_mels, dim)) / np.sqrt(fe.n_mels)).astype(np.float32)
    image = helper.make_graph(
        [helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("ReduceMean", ["f", "axes_hw"], ["rgb"], keepdims=0),
         helper.make_node("Mul", ["rgb", "inv255"], ["rgb01"]),
         helper.make_node("MatMul", ["rgb01", "w"], ["embedding"])],
        "handmade_image",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", image_size, image_size, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        [numpy_helper.from_array(np.array([1, 2], np.int64), "axes_hw"),
         numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255"),
         numpy_helper.from_array(w_image, "w")])
    audio = helper.make_graph(
        [helper.make_node("ReduceMean", ["log_mel", "axes_t"], ["m"], keepdims=0),
         helper.make_node("Reshape", ["m", "shape"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["embedding"])],
        "handmade_audio",
        [helper.make_tensor_value_info("log_mel", TensorProto.FLOAT, ["batch", 1, fe.n_mels, "frames"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        [numpy_helper.from_array(np.array([3], np.int64), "axes_t"),
         numpy_helper.from_array(np.array([-1, fe.n_mels], np.int64), "shape"),
         numpy_helper.from_array(w_audio, "w")])
    _save(image, folder / IMAGE_FILE)
    _save(audio, folder / AUDIO_FILE)
    write_manifest(folder, {
        "embedding_dim": dim, "distance": distance, "precision": "fp32",
        "image": {"input": "image", "output": "embedding", "size": image_size, "layout": "NHWC", "dtype": "uint8",
                  "arch": "handmade-mean-colour", "ground_size_m": ground_size_m},
        "audio": {"input": "log_mel", "output": "embedding", "front_end": fe.to_dict(), "chunk_rule": {},
                  "aggregate": "mean", "arch": "handmade-mean-spectrum"},
        "trained_on": trained_on or {"kind": "handmade test fixture"}, "exported_at": "2025-01-01T00:00:00+00:00",
        "parity": None})
    return HandmadeBundle(folder, w_image.astype(np.float64), w_audio.astype(np.float64))


def write_geotiff(path: Path, rgb: np.ndarray, crs: str | None, transform, nodata: float | None = None,
                  tiled: bool = False) -> Path:
    """Write (H, W, 3) pixels as a GeoTIFF (``crs`` None: no CRS at all)."""
    h, w, _ = rgb.shape
    profile = {"driver": "GTiff", "width": w, "height": h, "count": 3, "dtype": rgb.dtype.name,
               "transform": transform, "nodata": nodata}
    if crs is not None:
        profile["crs"] = crs
    if tiled:
        profile.update(tiled=True, blockxsize=64, blockysize=64)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rgb.transpose(2, 0, 1))
    return path


def mercator_scene(path: Path, seed: int = 0) -> tuple[Path, np.ndarray, dict]:
    """A 640 x 512 px RGB GeoTIFF in EPSG:3857 near 48.1 N, 11.6 E (10 'Mercator metres' per pixel),
    with a 128 px nodata border on the left, 64 px at the top and 40 px at the bottom (nodata = 0).

    Each 64 px block has its own flat colour, so tile colours are known exactly."""
    rng = np.random.default_rng(seed)
    h, w = 512, 640
    blocks = rng.integers(30, 250, size=(h // 64, w // 64, 3)).astype(np.uint8)
    rgb = np.repeat(np.repeat(blocks, 64, axis=0), 64, axis=1)
    rgb[:, :128] = 0
    rgb[:64] = 0
    rgb[h - 40:] = 0
    x0, y0 = 1291300.0, 6125000.0
    write_geotiff(path, rgb, "EPSG:3857", Affine(10.0, 0, x0, 0, -10.0, y0), nodata=0)
    return path, rgb, {"x0": x0, "y0": y0, "res": 10.0}


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def source_entries(root: Path) -> list[dict]:
    """An atlas's source entries read here independently of engine.atlas: from atlas.json (format 1-2) or
    from the counted bytes of the log it names (format 3), the last line of an index winning."""
    manifest = read_json(Path(root) / "atlas.json")
    if "source_log" not in manifest:
        return manifest["sources"]
    spec = manifest["source_log"]
    data = (Path(root) / spec["file"]).read_bytes()[:spec["bytes"]] if spec["bytes"] else b""
    last = {}
    for line in data.splitlines():
        entry = json.loads(line)
        last[entry["index"]] = entry
    return [last[k] for k in range(spec["count"])]


def comparable_files(root: Path, strip) -> dict[str, object]:  # noqa: ANN001
    """Every file of an atlas, for comparing two builds: data files as bytes; atlas.json through ``strip``
    (its clock times removed) without the log's file name and size, which depend on the commits made; the
    source entries as read (through ``strip``) instead of the log's bytes."""
    import re

    out: dict[str, object] = {}
    for path in sorted(Path(root).rglob("*")):
        rel = str(path.relative_to(root))
        if not path.is_file() or path.name == ".lock" or re.fullmatch(r"sources\.\d+\.jsonl", rel):
            continue
        if rel == "atlas.json":
            manifest = read_json(path)
            manifest.pop("source_log", None)
            manifest.pop("sources", None)
            out[rel] = strip(manifest)
            out["sources (entries)"] = strip(source_entries(root))
        else:
            out[rel] = path.read_bytes()
    return out
