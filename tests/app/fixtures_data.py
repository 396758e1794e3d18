"""Builds the app tests' data with the real pieces: a model bundle (the shipped demo bundle, or an
untrained slim model exported by the real exporter when the demo bundle is not in resources/ yet),
and atlases made by the real builder from ../shared/realdata imagery and recordings."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tests.conftest import ROOT

SHIPPED_BUNDLE = ROOT / "resources" / "demo-bundle"
# Recordings are placed inside the Landsat scene (centre about 77.76 W, 24.56 N).
SCENE_LON = (-78.45, -77.05)
SCENE_LAT = (23.95, 25.15)
TILE_SIZE_M = 8000.0


def export_untrained_bundle(out: Path, seed: int = 0, model: dict | None = None) -> Path:
    """An untrained model exported as a bundle by ``engine.export`` (same format as a trained one);
    ``model`` overrides the slim test architecture (a ModelConfig dict)."""
    import torch

    from engine.audio import FrontEndConfig
    from engine.checkpoint import save_checkpoint, write_run_config
    from engine.config.model import ModelConfig
    from engine.export import export_bundle
    from engine.models import build_audio_encoder, build_image_encoder

    run = out.parent / f"{out.name}-run"
    torch.manual_seed(seed)
    cfg = ModelConfig(**(model or {"image_width": 8, "audio_width": 8, "embed_dim": 32, "image_size": 48}))
    write_run_config(run, {"model": cfg.to_dict(), "front_end": FrontEndConfig().to_dict(),
                           "data": {"ground_size_m": TILE_SIZE_M}, "preset": "test-untrained"})
    image, audio = build_image_encoder(cfg), build_audio_encoder(cfg)
    save_checkpoint(run / "checkpoints" / "best.pt", {"image_encoder": image.state_dict(),
                                                      "audio_encoder": audio.state_dict(), "epoch": 0,
                                                      "step": 0, "metrics": {}})
    export_bundle(run, out)
    return out


def variant_bundle(bundle: Path, out: Path) -> Path:
    """A copy of ``bundle`` whose audio model file differs (a doc string), so its bundle_id differs."""
    import json
    import shutil

    import onnx

    from engine.bundle.format import write_manifest

    shutil.copytree(bundle, out)
    model = onnx.load(str(out / "audio_encoder.onnx"))
    model.doc_string = "variant for tests"
    onnx.save(model, str(out / "audio_encoder.onnx"))
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("format", "format_version", "files", "bundle_id"):
        manifest.pop(key, None)
    write_manifest(out, manifest)
    return out


def write_pair_table(path: Path, audio_files: list[Path], seed: int = 0) -> Path:
    """A pair table placing each recording at a seeded random point of the scene (no images)."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "longitude", "latitude", "image", "audio", "title"])
        for i, a in enumerate(audio_files):
            w.writerow([f"rec{i:02d}", f"{rng.uniform(*SCENE_LON):.6f}", f"{rng.uniform(*SCENE_LAT):.6f}", "",
                        str(a), a.stem])
    return path


def build_test_atlas(out: Path, bundle: Path, realdata: Path, tile_size_m: float = TILE_SIZE_M) -> Path:
    """The real builder on the real Landsat GeoTIFF and the real recordings."""
    from engine.atlas import build_atlas

    table = write_pair_table(out.parent / f"{out.name}-pairs.csv", sorted((realdata / "audio").glob("*.wav")))
    build_atlas(out, bundle, imagery=[realdata / "imagery" / "RGB.byte.tif"], tile_size_m=tile_size_m,
                recordings=table)
    return out


def shifted_geotiff(src: Path, out: Path, shift_x_m: float, crop: int = 200) -> Path:
    """A crop of a real GeoTIFF moved east by ``shift_x_m`` metres (new imagery of another place)."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    with rasterio.open(src) as ds:
        window = Window(ds.width // 2 - crop // 2, ds.height // 2 - crop // 2, crop, crop)
        data = ds.read(window=window)
        transform = Affine.translation(shift_x_m, 0) @ ds.window_transform(window)
        profile = ds.profile | {"width": crop, "height": crop, "transform": transform}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out
