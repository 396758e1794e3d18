"""The synthetic demo world (size tiny, generated once per session): determinism, the pair table's files,
georeferencing checked against the GeoTIFFs with an independent inverse transform, classes, spatial
splits, that trivial cues do not give the pairing away, and bad input."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import soundfile as sf
from PIL import Image
from rasterio.warp import transform
from scipy.stats import spearmanr

from engine.audio import FrontEndConfig, file_log_mel, probe_audio
from engine.cli import main
from engine.data.source import image_ground_m, open_source
from engine.demo_world import CLASS_NAMES, SIZES, generate_world
from engine.errors import Cancelled, ConfigError, DatasetError
from engine.progress import Job

TINY = SIZES["tiny"]


def read_table(folder: Path) -> list[dict[str, str]]:
    with open(folder / "pairs.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(demo_world_tiny: Path) -> Path:
    return demo_world_tiny  # seed 0, size tiny, generated once per session


@pytest.fixture(scope="module")
def rows(world: Path) -> list[dict[str, str]]:
    return read_table(world)


@pytest.fixture(scope="module")
def meta(world: Path) -> dict:
    return json.loads((world / "world.json").read_text())


def test_same_seed_same_bytes_whatever_the_number_of_processes(world: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    summary = generate_world(again, seed=0, size="tiny", workers=2)  # a process pool this time
    assert summary.workers == 2
    assert digests(again) == digests(world)
    other = tmp_path / "other"
    generate_world(other, seed=1, size="tiny")
    assert (other / "pairs.csv").read_bytes() != (world / "pairs.csv").read_bytes()


def test_layout_and_world_json(world: Path, rows: list[dict[str, str]], meta: dict) -> None:
    assert {p.name for p in world.iterdir()} == {"README.md", "pairs.csv", "world.json", "mosaic.tif",
                                                  "land_cover.tif", "images", "audio"}
    assert "synthetic" in (world / "README.md").read_text().lower()
    assert meta["synthetic"] is True and meta["seed"] == 0 and meta["size"] == "tiny"
    assert meta["pixel_size_m"] * meta["image_px"] == meta["image_size_m"] == meta["suggested_tile_size_m"] == 256
    assert [c["name"] for c in meta["classes"]] == list(CLASS_NAMES) and len(CLASS_NAMES) >= 6
    assert len(rows) == meta["counts"]["recordings"] == TINY.recordings
    assert list(rows[0])[:7] == ["id", "longitude", "latitude", "image", "audio", "split", "label"]
    assert [k for k in rows[0] if k.startswith("lc_")] == [f"lc_{c}" for c in CLASS_NAMES]
    for r in rows:
        assert abs(sum(float(r[f"lc_{c}"]) for c in CLASS_NAMES) - 1) < 1e-3


def test_the_data_layer_reads_it_as_a_demo_world(world: Path, meta: dict) -> None:
    source = open_source(world)
    assert (source.layout, source.kind, source.split_rule) == ("pairs", "demo-world", "column")
    assert image_ground_m(source) == meta["image_size_m"] == 256
    assert {s: len(source.indices(s)) for s in ("train", "val", "test")} == {
        s: meta["counts"][s] for s in ("train", "val", "test")}


def test_every_image_and_recording_decodes(world: Path, rows: list[dict[str, str]], meta: dict) -> None:
    cfg = FrontEndConfig()
    for r in rows:
        with Image.open(world / r["image"]) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (meta["image_px"],) * 2
        info = probe_audio(world / r["audio"])
        assert info.format == "FLAC" and info.sample_rate == 22050 and info.channels == 1
        assert info.frames == round(meta["audio"]["seconds"] * 22050)
        mel = file_log_mel(world / r["audio"], cfg)
        assert mel.shape == (128, 1 + info.frames // cfg.hop_length) and np.isfinite(mel).all()


def crop_error(rgb: np.ndarray, image: np.ndarray, row: int, col: int) -> float:
    """Mean absolute difference between ``image`` and the mosaic (bands, rows, cols) centred at (row, col)."""
    half = image.shape[0] // 2
    crop = rgb[:, row - half:row + half, col - half:col + half]
    return float(np.abs(np.moveaxis(crop, 0, -1) - image).mean())


def test_geotiffs_agree_with_the_table(world: Path, rows: list[dict[str, str]], meta: dict) -> None:
    with rasterio.open(world / "mosaic.tif") as mosaic, rasterio.open(world / "land_cover.tif") as cover:
        assert mosaic.crs.to_epsg() == cover.crs.to_epsg() == 32632 and meta["crs"] == "EPSG:32632"
        assert mosaic.count == 3 and mosaic.res == (TINY.pixel_m, TINY.pixel_m) and mosaic.overviews(1)
        assert mosaic.transform == cover.transform
        b = meta["bounds"]
        assert tuple(mosaic.bounds) == (b["west"], b["south"], b["east"], b["north"])
        # UTM 32N has its central meridian at 9 E; 60 km east of it at 54.3 N is about 9.92 E.
        west_lon = 9 + (b["west"] - 500_000) / (111_320 * np.cos(np.radians(54.3)))
        assert abs(min(float(r["longitude"]) for r in rows) - west_lon) < 0.05
        # The table's WGS 84 coordinates, projected back independently, land inside the rasters.
        lon = [float(r["longitude"]) for r in rows]
        lat = [float(r["latitude"]) for r in rows]
        east, north = transform("EPSG:4326", mosaic.crs, lon, lat)
        half = meta["image_px"] // 2
        classes = cover.read(1)
        rgb = mosaic.read().astype(float)
        errors: list[float] = []
        for r, e, n in zip(rows, east, north, strict=True):
            assert b["west"] < e < b["east"] and b["south"] < n < b["north"]
            row, col = mosaic.index(e, n, op=round)  # points sit on pixel corners
            window = classes[row - half:row + half, col - half:col + half]
            shares = np.bincount(window.ravel(), minlength=len(CLASS_NAMES)) / window.size
            for k, name in enumerate(CLASS_NAMES):
                assert abs(shares[k] - float(r[f"lc_{name}"])) < 2e-4, (r["id"], name)
            assert CLASS_NAMES[int(np.argmax(shares))] == r["label"]
            # The image is the mosaic's crop centred on the point: both are JPEG-compressed, so they
            # differ a little, but far less than a crop three pixels off (towards the middle).
            image = np.asarray(Image.open(world / r["image"]), float)
            aligned = crop_error(rgb, image, row, col)
            errors.append(aligned)
            inward_r, inward_c = (3 if row < rgb.shape[1] / 2 else -3), (3 if col < rgb.shape[2] / 2 else -3)
            shifted = min(crop_error(rgb, image, row + inward_r, col), crop_error(rgb, image, row, col + inward_c))
            assert aligned < 10.0 and aligned < 0.6 * shifted, r["id"]
        assert np.median(errors) < 6.5  # grey levels of 255


def test_every_class_appears(world: Path, rows: list[dict[str, str]]) -> None:
    with rasterio.open(world / "land_cover.tif") as cover:
        present = np.unique(cover.read(1))
        assert cover.colormap(1)[0][:3] == (0x1D, 0x4F, 0x7A)
    assert list(present) == list(range(len(CLASS_NAMES)))
    for name in CLASS_NAMES:
        assert any(float(r[f"lc_{name}"]) > 0 for r in rows), name
    assert len({r["label"] for r in rows}) >= 5


def test_splits_are_spatially_separated(rows: list[dict[str, str]], meta: dict) -> None:
    split = np.array([r["split"] for r in rows])
    counts = {s: int((split == s).sum()) for s in ("train", "val", "test")}
    assert counts == {"train": 44, "val": 10, "test": 10}  # 70/15/15 of 64
    east, north = transform("EPSG:4326", "EPSG:32632", [float(r["longitude"]) for r in rows],
                            [float(r["latitude"]) for r in rows])
    xy = np.c_[east, north]
    for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
        gap = np.linalg.norm(xy[split == a][:, None] - xy[split == b][None], axis=-1).min()
        assert gap >= meta["image_size_m"] - 1e-6  # the footprints of different splits never overlap
    # Points in the same block share its split.
    block = meta["split"]["block_size_m"]
    key = [(int((meta["bounds"]["north"] - n) // block), int((e - meta["bounds"]["west"]) // block))
           for e, n in xy]
    for k in set(key):
        assert len({s for s, kk in zip(split, key, strict=True) if kk == k}) == 1


def test_trivial_cues_do_not_give_the_pairing_away(world: Path, rows: list[dict[str, str]]) -> None:
    brightness = np.array([np.asarray(Image.open(world / r["image"]), float).mean() for r in rows])
    loudness = np.array([10 * np.log10(np.mean(sf.read(world / r["audio"], dtype="float64")[0] ** 2))
                         for r in rows])
    assert loudness.max() - loudness.min() > 20  # the recording gain varies over tens of dB
    assert abs(spearmanr(brightness, loudness)[0]) < 0.3
    # Matching each image to the recording whose loudness rank is nearest its brightness rank: chance.
    rb, rl = np.argsort(np.argsort(brightness)), np.argsort(np.argsort(loudness))
    cost = np.abs(rb[:, None] - rl[None, :])
    ranks = (cost < np.diag(cost)[:, None]).sum(axis=1)
    assert np.median(ranks) > len(rows) / 4
    for name in CLASS_NAMES:
        share = np.array([float(r[f"lc_{name}"]) for r in rows])
        if share.std() > 0:
            assert abs(spearmanr(loudness, share)[0]) < 0.35, name


def test_the_land_cover_mix_is_audible(world: Path, rows: list[dict[str, str]]) -> None:
    """Leave-one-out ridge regression from mean log-mel bands predicts the land-cover shares."""
    cfg = FrontEndConfig()
    bands = np.array([file_log_mel(world / r["audio"], cfg).reshape(32, 4, -1).mean(axis=(1, 2)) for r in rows])
    shares = np.array([[float(r[f"lc_{c}"]) for c in CLASS_NAMES] for r in rows])
    x = np.c_[bands, np.ones(len(rows))]
    predicted = np.empty_like(shares)
    for i in range(len(rows)):
        keep = np.arange(len(rows)) != i
        w = np.linalg.solve(x[keep].T @ x[keep] + np.eye(x.shape[1]), x[keep].T @ shares[keep])
        predicted[i] = x[i] @ w
    varied = shares.std(axis=0) > 0.02
    corr = [np.corrcoef(predicted[:, k], shares[:, k])[0, 1] for k in np.flatnonzero(varied)]
    assert np.mean(corr) > 0.3 and max(corr) > 0.6


def test_tiles_render_seamlessly() -> None:
    """Two overlapping windows give identical pixels where they overlap (tiles join without seams)."""
    from engine.demo_world.imagery import SHADOW_REACH_M, render
    from engine.demo_world.land_cover import calibrate, classify
    from engine.demo_world.layout import plan_world

    layout = calibrate(plan_world(5, TINY))
    px = TINY.pixel_m
    margin = int(np.ceil(SHADOW_REACH_M / px))
    out = {}
    for name, (c0, r0) in {"a": (150, 200), "b": (190, 230)}.items():
        cols, rows = np.arange(c0 - margin, c0 + 80 + margin), np.arange(r0 - margin, r0 + 80 + margin)
        xs, ys = (cols + 0.5) * px, (rows + 0.5) * px
        cover = classify(layout, xs, ys)
        out[name] = (render(layout, cover, xs, ys, px)[margin:-margin, margin:-margin], cover.layer[margin:-margin, margin:-margin])
    for k in (0, 1):
        np.testing.assert_array_equal(out["a"][k][30:, 40:], out["b"][k][:50, :40])


# ------------------------------------------------------------------------------------- bad input

def test_refuses_a_non_empty_folder_and_keeps_its_contents(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("my field notes")
    with pytest.raises(DatasetError) as err:
        generate_world(target, size="tiny")
    assert str(target) in str(err.value) and "not empty" in str(err.value) and "\n" not in str(err.value)
    assert [p.name for p in target.iterdir()] == ["notes.txt"] and (target / "notes.txt").read_text() == "my field notes"


def test_refuses_a_file_and_bad_options(tmp_path: Path) -> None:
    afile = tmp_path / "world.csv"
    afile.write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        generate_world(afile, size="tiny")
    assert afile.read_text() == "x"
    with pytest.raises(ConfigError, match="unknown size 'huge'"):
        generate_world(tmp_path / "a", size="huge")
    with pytest.raises(ConfigError, match="--seed"):
        generate_world(tmp_path / "a", seed=-3, size="tiny")
    with pytest.raises(ConfigError, match="--workers"):
        generate_world(tmp_path / "a", size="tiny", workers=0)
    assert not (tmp_path / "a").exists()


def test_an_empty_existing_folder_is_used(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    summary = generate_world(target, seed=2, size="tiny")
    assert (target / "pairs.csv").is_file() and summary.recordings == TINY.recordings
    assert "synthetic" in summary.describe() and str(target) in summary.describe()


class CancelAfter(Job):
    def __init__(self, steps: int) -> None:
        super().__init__(self._count)
        self.steps = steps

    def _count(self, done: int, total: int | None, message: str) -> None:
        if done >= self.steps:
            self.cancel()


def test_cancelling_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "world"
    with pytest.raises(Cancelled):
        generate_world(target, size="tiny", job=CancelAfter(20))
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a half-written temporary one


def test_cli_answers_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.flac").write_bytes(b"mine")
    assert main(["demo-world", "--out", str(target), "--size", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(target) in err and "Traceback" not in err
    assert (target / "keep.flac").read_bytes() == b"mine"


class Recorder(Job):
    def __init__(self) -> None:
        super().__init__(lambda done, total, message: self.calls.append((done, total, message)))
        self.calls: list[tuple[int, int | None, str]] = []


def test_progress_counts_up_to_its_total(tmp_path: Path) -> None:
    job = Recorder()
    generate_world(tmp_path / "w", seed=0, size="tiny", job=job)
    done = [d for d, _, _ in job.calls]
    totals = {t for _, t, _ in job.calls}
    assert done == sorted(done) and len(totals) == 1 and done[-1] == totals.pop() > TINY.recordings
    assert {"rendering the mosaic", "images and recordings", "writing GeoTIFFs"} <= {m for _, _, m in job.calls}
