"""ONNX export of a tiny run trained on the tiny demo world through ``main(["train", ...])``:
onnxruntime vs PyTorch, the manifest and its checks, ``embed``, the variants' retrieval check on the
run's validation pairs, and a whole path from run to atlas query."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import soundfile as sf
import torch
from PIL import Image

from engine.audio import FrontEndConfig, chunk_log_mel, chunk_spans, file_log_mel
from engine.augment import center_views
from engine.bundle.format import load_bundle
from engine.checkpoint import load_encoders
from engine.cli import main
from engine.config.run import load_preset
from engine.data.source import open_source
from engine.embedding import embed_clips
from engine.errors import BundleError
from engine.evaluate import retrieval_metrics
from engine.export import ExportError, export_bundle, trained_on
from engine.inference.encoders import BundleEncoders
from engine.inference.images import prepare_image

TINY = load_preset("tiny")  # the preset file: what the run must have been built with
SIZE, DIM = TINY.model.image_size, TINY.model.embed_dim


@pytest.fixture(scope="module")
def exported(demo_run_tiny: Path, demo_bundle_tiny: Path) -> tuple[Path, Path, dict]:
    return demo_run_tiny, demo_bundle_tiny, json.loads((demo_bundle_tiny / "manifest.json").read_text())


def _table(world: Path) -> list[dict[str, str]]:
    with open(world / "pairs.csv", newline="") as f:
        return list(csv.DictReader(f))


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_onnxruntime_matches_pytorch_on_fresh_inputs(exported, realdata: Path) -> None:
    run_dir, bundle_dir, manifest = exported
    run = load_encoders(run_dir)
    assert manifest["parity"]["image"]["max_relative_difference"] < 1e-4
    assert manifest["parity"]["audio"]["max_relative_difference"] < 1e-4
    # The check ran on the run's own data (the demo world it was trained on), not on synthetic inputs.
    world = Path(json.loads((run_dir / "config.json").read_text())["dataset"]["path"])
    assert manifest["parity"]["inputs"] == f"8 images and 3 recordings of {world / 'pairs.csv'}"
    images = np.random.default_rng(7).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    session = ort.InferenceSession(str(bundle_dir / "image_encoder.onnx"))
    with torch.no_grad():  # the app feeds uint8 RGB; PyTorch gets the same as floats in [0, 1], NCHW
        expected = run.image_encoder(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    assert _rel(session.run(None, {"image": images})[0], expected) < 1e-4
    mel = file_log_mel(realdata / "audio" / "S4A03895_20190522_200000.wav", FrontEndConfig())
    session = ort.InferenceSession(str(bundle_dir / "audio_encoder.onnx"))
    for frames in (57, 301, mel.shape[1]):  # the time axis is dynamic
        batch = np.ascontiguousarray(np.stack([mel[None, :, :frames], mel[None, :, -frames:]]))
        with torch.no_grad():
            expected = run.audio_encoder(torch.from_numpy(batch)).numpy()
        assert _rel(session.run(None, {"log_mel": batch})[0], expected) < 1e-4


def test_graphs_have_the_contracted_signature(exported) -> None:
    _, bundle_dir, _ = exported
    for name, input_name, dtype, dims in (
            ("image_encoder.onnx", "image", onnx.TensorProto.UINT8, ["batch", SIZE, SIZE, 3]),
            ("audio_encoder.onnx", "log_mel", onnx.TensorProto.FLOAT, ["batch", 1, 128, "frames"])):
        model = onnx.load(str(bundle_dir / name))
        onnx.checker.check_model(model, full_check=True)
        (inp,), (out,) = model.graph.input, model.graph.output
        assert inp.name == input_name and inp.type.tensor_type.elem_type == dtype
        assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == dims
        assert out.name == "embedding"
        assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", DIM]
        assert {o.domain: o.version for o in model.opset_import}[""] == 18
        assert "BatchNormalization" not in {n.op_type for n in model.graph.node}  # folded into the convs
        # No debug notes: the bytes depend on the weights, not on where the code was checked out.
        assert not any(n.metadata_props or n.doc_string for n in model.graph.node)
        assert b"export.py" not in (bundle_dir / name).read_bytes()


def test_manifest_round_trip_and_hashes(exported, demo_world_tiny: Path) -> None:
    run_dir, bundle_dir, manifest = exported
    bundle = load_bundle(bundle_dir)
    files = {n: hashlib.sha256((bundle_dir / n).read_bytes()).hexdigest()
             for n in ("audio_encoder.onnx", "image_encoder.onnx")}
    assert bundle.manifest["files"] == files
    text = "".join(f"{n}:{files[n]}\n" for n in sorted(files))
    assert bundle.bundle_id == hashlib.sha256(text.encode()).hexdigest()
    assert json.loads((bundle_dir / "manifest.json").read_text()) == manifest
    config = json.loads((run_dir / "config.json").read_text())
    assert bundle.front_end == FrontEndConfig.from_dict(config["front_end"]) == TINY.front_end
    assert (bundle.embedding_dim, bundle.distance, bundle.image_size) == (DIM, "euclidean", SIZE)
    assert manifest["image"]["layout"] == "NHWC" and manifest["image"]["dtype"] == "uint8"
    assert manifest["audio"]["chunk_rule"]["chunk_frames"] == FrontEndConfig().chunk_frames == 215
    # The encoder saw the central image_region x eval_scale of each demo image (world.json: its ground width).
    world = json.loads((demo_world_tiny / "world.json").read_text())
    view_m = world["image_size_m"] * TINY.data.image_region * TINY.augment.eval_scale
    assert bundle.ground_size_m == pytest.approx(view_m, abs=1e-3)
    # What it was trained on: the dataset train recorded, and the checkpoint's own epoch, step and metrics.
    best = torch.load(run_dir / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
    trained = manifest["trained_on"]
    assert (trained["data"], trained["kind"], trained["preset"]) == (str(demo_world_tiny.resolve()), "demo-world",
                                                                       "tiny")
    assert (trained["epochs"], trained["step"], trained["metrics"]) == (best["epoch"], best["step"], best["metrics"])
    counts = {split: sum(r["split"] == split for r in _table(demo_world_tiny)) for split in ("train", "val", "test")}
    assert (trained["split_rule"], trained["pairs"], trained["audio_source"]) == ("column", counts, "audio")


def test_trained_on_for_runs_without_a_recorded_kind(exported, tmp_path: Path, demo_world_tiny: Path) -> None:
    run_dir, _, _ = exported
    old = Path(shutil.copytree(run_dir, tmp_path / "old"))
    config = json.loads((old / "config.json").read_text())
    del config["dataset"]["kind"]  # runs trained before train recorded it
    (old / "config.json").write_text(json.dumps(config))
    assert trained_on(load_encoders(old), "best")["kind"] == "demo-world"  # told from world.json
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(demo_world_tiny, elsewhere)
    (elsewhere / "world.json").unlink()
    config["dataset"]["path"] = str(elsewhere)
    (old / "config.json").write_text(json.dumps(config))
    assert trained_on(load_encoders(old), "best")["kind"] == "pair-table"
    config["dataset"]["path"] = str(tmp_path / "gone")  # data not on this machine: unknown, never guessed
    (old / "config.json").write_text(json.dumps(config))
    assert trained_on(load_encoders(old), "best")[("kind")] is None


def test_bad_bundles_are_refused_with_one_line(exported, tmp_path: Path) -> None:
    _, bundle_dir, _ = exported

    def copy(name: str) -> Path:
        return Path(shutil.copytree(bundle_dir, tmp_path / name))

    damaged = copy("damaged")
    data = bytearray((damaged / "image_encoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (damaged / "image_encoder.onnx").write_bytes(bytes(data))
    future = copy("future")
    m = json.loads((future / "manifest.json").read_text())
    m["format_version"] = 9
    (future / "manifest.json").write_text(json.dumps(m))
    missing = copy("missing")
    (missing / "audio_encoder.onnx").unlink()
    edited = copy("edited")
    m = json.loads((edited / "manifest.json").read_text())
    m["files"]["image_encoder.onnx"] = "0" * 64
    (edited / "manifest.json").write_text(json.dumps(m))
    cases = [(damaged / "image_encoder.onnx", damaged, "sha256 differs"),
             (future, future, "format version 9 is not supported"),
             (missing / "audio_encoder.onnx", missing, "model file missing"),
             (edited / "manifest.json", edited, "bundle_id does not match"),
             (tmp_path / "nothing", tmp_path / "nothing", "model bundle not found")]
    for named, folder, problem in cases:
        with pytest.raises(BundleError) as info:
            load_bundle(folder)
        message = str(info.value)
        assert message.startswith(f"{named}: ") and problem in message and "; " in message and "\n" not in message


def test_export_above_tolerance_writes_nothing(exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir, bundle_dir, _ = exported
    # The graphs are the fixture's (exporting again would only cost time); the parity measurement is real
    # and finds a difference of about 1e-6, which a tolerance of 0 refuses.
    monkeypatch.setattr("engine.export.writer.export_onnx", lambda module, example, path, *a: shutil.copy(
        bundle_dir / Path(path).name, path))
    with pytest.raises(ExportError, match="above 0; nothing was written"):
        export_bundle(run_dir, tmp_path / "b", tolerance=0.0)
    # The same export within tolerance also checks the recordings given (e.g. real field recordings).
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(np.arange(44100) / 9)).astype(np.float32), 22050)
    manifest = export_bundle(run_dir, tmp_path / "b", audio_files=[tmp_path / "none.wav", tmp_path / "tone.wav"])
    assert manifest["parity"]["inputs"].endswith("; 1 given recordings (tone.wav)")  # none.wav: skipped
    assert manifest["parity"]["audio"]["clips"] == 3 + 1  # the run's 3 and the readable one given
    shutil.rmtree(tmp_path / "b")
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b*"))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not a model bundle"):
        export_bundle(run_dir, tmp_path / "notes")


def test_embed_command_onnx_and_torch_agree(exported, realdata: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, bundle_dir, _ = exported
    picture = np.random.default_rng(1).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "wide.png")
    rec = realdata / "audio" / "spinetail.wav"
    rows = {}
    for backend in ("onnx", "torch"):
        argv = ["embed", "--bundle", str(bundle_dir), "--backend", backend, "--json"]
        argv += ["--run", str(run_dir)] if backend == "torch" else []
        assert main(argv + ["--audio", str(rec)]) == 0
        assert main(argv + ["--image", str(tmp_path / "wide.png")]) == 0
        rows[backend] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for a, b in zip(rows["onnx"], rows["torch"], strict=True):
        assert a["file"] == b["file"] and a["dim"] == DIM
        assert _rel(np.array(a["embedding"]), np.array(b["embedding"])) < 1e-4
    assert rows["onnx"][0]["chunks"] == len(chunk_spans(file_log_mel(rec, FrontEndConfig()).shape[1], FrontEndConfig()))
    assert rows["onnx"][1]["size"] == [70, 45]
    # The chunk rule through onnxruntime equals the mean of the PyTorch chunk embeddings.
    run = load_encoders(run_dir)
    with torch.no_grad():
        chunks = chunk_log_mel(file_log_mel(rec, FrontEndConfig()), FrontEndConfig())
        expected = run.audio_encoder(torch.from_numpy(np.ascontiguousarray(chunks))).numpy().mean(0)
    assert _rel(BundleEncoders(bundle_dir).embed_audio_file(rec), expected) < 1e-4
    samples, rate = sf.read(rec, dtype="float32")
    assert _rel(BundleEncoders(bundle_dir).embed_samples(samples, rate), expected) < 1e-4
    assert main(["embed", "--bundle", str(bundle_dir), "--audio", str(tmp_path / "wide.png")]) == 2
    assert "unsupported extension" in capsys.readouterr().err


def test_images_are_centre_cropped_then_resized() -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :10] = (255, 0, 0)
    image[:, 10:50] = (0, 200, 0)
    image[:, 50:] = (0, 0, 255)
    out = prepare_image(image, 20)
    assert out.shape == (20, 20, 3) and (out == (0, 200, 0)).all()
    tall = np.zeros((60, 40), np.uint8)
    tall[10:50] = 77
    assert (prepare_image(tall, 40) == 77).all()


@pytest.mark.slow
def test_int8_variant_reports_its_retrieval_change(exported, demo_world_tiny: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir, bundle_dir, _ = exported
    # The graphs of the same run are the fixture's (the parity check, which runs for real, agrees).
    monkeypatch.setattr("engine.export.writer.export_onnx", lambda module, example, path, *a: shutil.copy(
        bundle_dir / Path(path).name, path))
    manifest = export_bundle(run_dir, tmp_path / "int8", precision="int8")
    variant = manifest["variant"]
    assert manifest["precision"] == "int8"
    # Exactly the validation pairs train validated on: the demo world's split column, in table order.
    rows = _table(demo_world_tiny)
    val = [i for i, r in enumerate(rows) if r["split"] == "val"]
    retrieval = variant["retrieval"]
    assert (retrieval["pairs"], retrieval["split_rule"], retrieval["skipped"]) == (len(val), "column", 0)
    assert retrieval["data"] == str(demo_world_tiny.resolve() / "pairs.csv")
    # The fp32 bundle's numbers, recomputed here with the PyTorch encoders on the same inputs: evaluate's
    # image view (engine.augment.center_views, as 8-bit pixels: the bundle's input) and evaluate's whole-clip
    # embedding, ranked by the paper protocol of train's validation.
    run = load_encoders(run_dir)
    source = open_source(demo_world_tiny, TINY.data, TINY.front_end)
    regions = torch.from_numpy(np.stack([source.image(i) for i in val])).permute(0, 3, 1, 2)
    views = (center_views(regions, SIZE, TINY.augment.eval_scale) * 255).round()
    with torch.no_grad():
        image = run.image_encoder(views / 255)
    audio = embed_clips(run.audio_encoder, [source.log_mel(i) for i in val], TINY.front_end, torch.device("cpu"))
    lon, lat = [float(rows[i]["longitude"]) for i in val], [float(rows[i]["latitude"]) for i in val]
    expected = retrieval_metrics(image, audio, lon, lat, protocol="paper")
    for direction in ("image_to_audio", "audio_to_image"):
        fp32, quant = retrieval["fp32"][direction], retrieval["int8"][direction]
        for k, value in fp32.items():
            assert value == pytest.approx(getattr(expected, direction).metrics[k], abs=1e-6), (direction, k)
        change = variant["retrieval_change"][direction]
        assert change["R@1"] == pytest.approx(quant["R@1"] - fp32["R@1"])
        assert change["median_rank"] == pytest.approx(quant["median_rank"] - fp32["median_rank"])
    assert all(variant["bytes"][n] < variant["fp32_bytes"][n] for n in variant["bytes"])
    # A few-step model quantises far worse than a well-trained one; this bound only catches a broken
    # graph (which would be off by 100 % or more).
    images = np.stack([np.asarray(Image.open(demo_world_tiny / rows[i]["image"]).resize((SIZE, SIZE))) for i in val])
    with torch.no_grad():
        reference = run.image_encoder(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    assert _rel(BundleEncoders(tmp_path / "int8").embed_images(images), reference) < 0.5


def test_exported_bundle_builds_and_queries_an_atlas(exported, realdata: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    from engine.atlas import open_atlas

    run_dir, bundle_dir, _ = exported
    world = realdata / "imagery" / "world.rgb.tif"
    rec = realdata / "audio" / "spinetail.wav"
    (tmp_path / "pairs.csv").write_text(f"id,longitude,latitude,image,audio\nbird,-60,-10,,{rec}\n")
    assert main(["atlas", "build", "--bundle", str(bundle_dir), "--out", str(tmp_path / "atlas"), "--imagery",
                 str(world), "--tile-px", "64", "--recordings", str(tmp_path / "pairs.csv")]) == 0
    atlas = open_atlas(tmp_path / "atlas", bundle_dir)
    run = load_encoders(run_dir)
    # Tile 11 (column 3, row 1) read here with rasterio at the thumbnail size, resized to the model's input,
    # and embedded by PyTorch.
    with rasterio.open(world) as ds:
        pixels = ds.read(window=Window(3 * 64, 64, 64, 64), out_shape=(3, 128, 128), resampling=Resampling.bilinear)
    tile = prepare_image(pixels.transpose(1, 2, 0), SIZE)
    with torch.no_grad():
        expected = run.image_encoder(torch.from_numpy(np.array(tile[None])).permute(0, 3, 1, 2).float() / 255).numpy()[0]
        chunks = chunk_log_mel(file_log_mel(rec, FrontEndConfig()), FrontEndConfig())
        sound = run.audio_encoder(torch.from_numpy(np.ascontiguousarray(chunks))).numpy().mean(0)
    assert tuple(atlas.tiles.grid[11]) == (3, 1)
    assert _rel(np.asarray(atlas.tiles.embeddings[11]), expected) < 1e-4
    assert _rel(np.asarray(atlas.recordings.embeddings[0]), sound) < 1e-4
    capsys.readouterr()
    assert main(["atlas", "query", "--atlas", str(tmp_path / "atlas"), "--audio", str(rec), "--json",
                 "--all-scores"]) == 0
    scores = np.array(json.loads(capsys.readouterr().out)["scores"])
    d = np.linalg.norm(np.asarray(atlas.tiles.embeddings, np.float64) - sound, axis=1)
    np.testing.assert_allclose(scores, 1 / (1 + d), rtol=1e-3)
