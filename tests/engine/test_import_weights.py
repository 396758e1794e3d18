"""Importing the SoundingEarth authors' checkpoints: the reference embeddings their code computes, through
the imported PyTorch run and through the exported ONNX bundle; and one-line refusals of bad files."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engine.audio import chunk_log_mel, normalise
from engine.bundle.format import load_bundle
from engine.checkpoint import load_checkpoint, load_encoders, read_run_config
from engine.cli import main
from engine.data.soundingearth import decode_spectrogram_jpg
from engine.export.onnx import ImageInput
from engine.inference.encoders import BundleEncoders
from engine.interop.soundingearth import import_checkpoint

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def cases(reference_dir: Path) -> dict[str, Any]:
    path = reference_dir / "soundingearth_checkpoint_cases.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return json.loads(path.read_text())


def rule_state_dict(entries: list[list[Any]]) -> dict[str, torch.Tensor]:
    """The cases' ``weight_rule``: each key seeded by its crc32, filled by its kind."""
    state = {}
    for key, shape, _dtype in entries:
        x = np.random.default_rng(zlib.crc32(key.encode())).standard_normal(shape)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.int64)
            continue
        if key.endswith("running_var"):
            value = np.abs(x) * 0.5 + 0.5
        elif key.endswith("running_mean"):
            value = x * 0.1
        elif key.endswith("weight") and len(shape) == 1:
            value = 1 + 0.1 * x
        elif key.endswith("bias"):
            value = 0.1 * x
        else:
            value = x * math.sqrt(2 / np.prod(shape[1:]))
        state[key] = torch.from_numpy(np.asarray(value).astype(np.float32))
    return state


def case_images() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8)


def case_spectrogram_png(folder: Path) -> Path:
    """The cases' spectrogram pixels, stored losslessly (PNG) and read by the SoundingEarth JPEG reader."""
    from PIL import Image

    pixels = np.random.default_rng(8).integers(0, 256, size=(128, 384), dtype=np.uint8)
    path = folder / "spectrogram.png"
    Image.fromarray(pixels, mode="L").save(path)
    return path


def relative_error(got: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(got - reference).max() / np.abs(reference).max())


def recordings(run_front_end, folder: Path) -> list[np.ndarray]:
    """Recording 0 = columns 0:128, recording 1 = columns 128:384, normalised as the data layer does it."""
    log_mel = normalise(decode_spectrogram_jpg(case_spectrogram_png(folder)), run_front_end)
    return [log_mel[:, 0:128], log_mel[:, 128:384]]


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1], ids=["resnet18-image", "resnet50-image"])
def test_reference_embeddings_torch_and_onnx(cases: dict[str, Any], tmp_path: Path, index: int) -> None:
    case = cases["models"][index]
    weights = tmp_path / "authors.pt"
    torch.save(rule_state_dict(case["state_dict"]), weights)
    run = tmp_path / "run"
    assert main(["import-weights", "--checkpoint", str(weights), "--out", str(run), "--image-size", "64"]) == 0
    ref_image, ref_sound = np.array(case["image_embeddings"]), np.array(case["sound_embeddings"])

    loaded = load_encoders(run, "best")
    expected_arch = "soundingearth-" + case["image_encoder"].lower()
    assert loaded.model.image_arch == expected_arch and loaded.model.audio_arch == "soundingearth-resnet18"
    clips = recordings(loaded.front_end, tmp_path)
    assert loaded.front_end.chunk_frames == 128
    with torch.no_grad():
        torch_image = ImageInput(loaded.image_encoder)(torch.from_numpy(case_images())).numpy()
        torch_sound = np.stack([loaded.audio_encoder(torch.from_numpy(chunk_log_mel(c, loaded.front_end))).numpy()
                                .mean(0) for c in clips])
    assert relative_error(torch_image, ref_image) <= TOLERANCE
    assert relative_error(torch_sound, ref_sound) <= TOLERANCE

    bundle_dir = tmp_path / "bundle"
    assert main(["export", "--run", str(run), "--out", str(bundle_dir)]) == 0
    bundle = load_bundle(bundle_dir)
    assert bundle.manifest["weights"]["sha256"] == read_run_config(run)["imported"]["sha256"]
    assert bundle.manifest["conventions"]["audio"]["chunking"]["chunk_frames"] == 128
    assert bundle.front_end.normalisation == "soundingearth_exp"
    encoders = BundleEncoders(bundle, threads=2)
    onnx_image = encoders.embed_images(case_images())
    onnx_sound = np.stack([encoders.embed_log_mel(c) for c in clips])  # the app's chunk rule and mean
    assert encoders.embed_log_mel_chunks(np.ascontiguousarray(clips[1][None, None, :, :128])).shape == (1, 128)
    assert relative_error(onnx_image, ref_image) <= TOLERANCE
    assert relative_error(onnx_sound, ref_sound) <= TOLERANCE


def test_run_folder_is_a_normal_run(cases: dict[str, Any], tmp_path: Path) -> None:
    weights = tmp_path / "authors.pt"
    torch.save(rule_state_dict(cases["models"][0]["state_dict"]), weights)
    result = import_checkpoint(weights, tmp_path / "run")
    config = read_run_config(result.run_dir)
    assert config["model"]["image_arch"] == "soundingearth-resnet18"
    assert config["front_end"]["normalisation"] == "soundingearth_exp"
    assert config["imported"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert config["imported"]["file"] == str(weights.resolve())
    for name in ("best", "last"):
        payload = load_checkpoint(result.run_dir / "checkpoints" / f"{name}.pt")
        assert payload["imported"]["sha256"] == result.sha256
        assert payload["image_encoder"]["head.weight"].shape == (128, 512)
    # downstream --weights RUN reads it as a run
    from engine.downstream.weights import load_weights

    encoders = load_weights(str(result.run_dir), need_audio=True)
    assert encoders.description["source"] == "run" and encoders.model.image_arch == "soundingearth-resnet18"
    assert encoders.image.backbone.conv1.out_channels == 32 and encoders.image.backbone.num_features == 512


def _bad_files(cases: dict[str, Any], folder: Path) -> dict[str, tuple[Path, str]]:
    good = rule_state_dict(cases["models"][0]["state_dict"])
    first_key = cases["models"][0]["state_dict"][0][0]
    files: dict[str, tuple[Path, str]] = {}

    def save(name: str, obj: Any, expect: str) -> None:
        path = folder / f"{name}.pt"
        torch.save(obj, path)
        files[name] = (path, expect)

    missing = dict(good)
    del missing["snd_encoder.module_list.0.fc.bias"]
    save("missing", missing, "missing key 'snd_encoder.module_list.0.fc.bias'")
    extra = {**good, "img_encoder.module_list.0.extra.weight": torch.zeros(3)}
    save("extra", extra, "unexpected key 'img_encoder.module_list.0.extra.weight'")
    shape = dict(good)
    shape["img_encoder.module_list.0.layer2.0.conv1.weight"] = torch.zeros(128, 64, 3, 3)
    save("shape", shape, "key 'img_encoder.module_list.0.layer2.0.conv1.weight' has shape [128, 64, 3, 3]")
    save("foreign", {"conv1.weight": good[first_key]}, "unexpected key 'conv1.weight'")
    save("wrapped", {"state_dict": good, "epoch": 3}, "not a plain state dict")
    path = folder / "pickle.pt"
    path.write_bytes(pickle.dumps({"model": Path("x")}))  # needs a class to load
    files["pickle"] = (path, "not a plain state dict (loading it would run code)")
    path = folder / "pickled_object.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, path)  # a whole module: loading it would run code
    files["object"] = (path, "not a plain state dict (loading it would run code)")
    path = folder / "notes.pt"
    path.write_text("these are not weights\n")
    files["text"] = (path, "is not a PyTorch checkpoint")
    return files


def test_bad_checkpoints_are_refused_with_one_line(cases: dict[str, Any], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for name, (path, expect) in _bad_files(cases, tmp_path).items():
        out = tmp_path / f"run-{name}"
        status = main(["import-weights", "--checkpoint", str(path), "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert status == 2, name
        assert err.startswith(f"error: {path}: ") and "\n" not in err, (name, err)
        assert expect in err, (name, err)
        assert not out.exists() and not list(tmp_path.glob(".run-*.partial")), name


def test_image_arch_option_insists(cases: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "r50.pt"
    torch.save(rule_state_dict(cases["models"][1]["state_dict"]), weights)
    assert main(["import-weights", "--checkpoint", str(weights), "--out", str(tmp_path / "run"),
                 "--image-arch", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert "unexpected key 'img_encoder.module_list.0.layer1.0.conv3.weight'" in err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    assert main(["import-weights", "--checkpoint", str(weights), "--out", str(tmp_path / "busy")]) == 2
    assert "not an empty folder" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_reads_their_spectrograms_exactly(cases: dict[str, Any], tmp_path: Path) -> None:
    """On SoundingEarth data the imported run's audio input is the JPEG pixel mapped linearly onto
    [e^-1.5, e^0.5], as the authors trained; ``evaluate`` runs on the imported run."""
    from PIL import Image

    from engine.config.run import RunConfig
    from engine.data.source import open_source
    from engine.evaluate_run import evaluate_run
    from tests.engine.fixtures import make_soundingearth

    weights = tmp_path / "authors.pt"
    torch.save(rule_state_dict(cases["models"][0]["state_dict"]), weights)
    run = import_checkpoint(weights, tmp_path / "run", image_size=64).run_dir
    fx = make_soundingearth(tmp_path / "se")
    cfg = RunConfig.from_dict(read_run_config(run))
    source = open_source(fx.root, cfg.data, cfg.front_end)
    assert source.audio_source == "spectrogram"
    low, high = math.exp(-1.5), math.exp(0.5)
    checked = [i for i, r in enumerate(source.records) if r.key != str(fx.truncated_spectrogram)][:4]
    for i in checked:
        with Image.open(source.records[i].audio) as im:
            pixels = np.asarray(im.convert("L"), dtype=np.float64)
        np.testing.assert_allclose(source.log_mel(i), pixels * (high - low) / 255 + low, rtol=2e-6)
    report = evaluate_run(run, fx.root, split="all", out=tmp_path / "eval.json", device="cpu", workers=0)
    assert report["gallery"] == len(source) - 2  # the corrupt image and the truncated spectrogram are skipped
    assert 1 <= report["image_to_audio"]["median_rank"] <= report["gallery"]
