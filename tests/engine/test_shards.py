"""prepare: the cache holds the same samples as the raw layout; faults are counted; reruns continue."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.config.data import DataConfig
from engine.data.source import open_source
from engine.errors import Cancelled, DatasetError
from engine.progress import Job
from engine.shards.format import RawSample, ShardGeometry, iter_shard, read_index, write_shard
from engine.shards.plan import PrepareConfig, plan_shards
from engine.shards.prepare import prepare_shards
from tests.engine.shards_fixture import (
    BAD_LATITUDE_KEY,
    CORRUPT_KEY,
    N_ROWS,
    NO_SPECTROGRAM_KEY,
    log_mel_from_pixels,
    make_soundingearth,
    metadata_rows,
)

# The central 768 px of the 1024 px images at 384 px: a 1/2-scale DCT decode, comparable to a 2x2 mean.
DATA = DataConfig(stored_size=384, split_rule="paper")


def _cfg(**kw: object) -> PrepareConfig:
    return PrepareConfig(data=DATA, shard_size=3, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def soundingearth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_soundingearth(tmp_path_factory.mktemp("se") / "SoundingEarth")


@pytest.fixture(scope="module")
def cache(soundingearth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "cache"
    prepare_shards(soundingearth, out, _cfg(workers=2))
    return out


def _all_samples(cache: Path) -> dict[str, RawSample]:
    index = read_index(cache)
    return {s.key: s for shard in index.shards for s in iter_shard(index.path(shard))}


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def test_cache_holds_the_raw_samples(soundingearth: Path, cache: Path) -> None:
    samples = _all_samples(cache)
    rows = metadata_rows(soundingearth)
    assert set(samples) == set(rows) - {CORRUPT_KEY, NO_SPECTROGRAM_KEY, BAD_LATITUDE_KEY}
    for key, s in samples.items():
        row = rows[key]
        assert (s.lon, s.lat) == (float(row["longitude"]), float(row["latitude"]))
        assert s.split == {2: "test", 5: "test", 7: "val"}.get(int(key) % 10, "train")
        # Pixels: the full-resolution decode, its central 768 px, averaged over 2x2 blocks.
        full = _decode((soundingearth / "images" / f"{key}.jpg").read_bytes())
        centre = full[128:896, 128:896].reshape(384, 2, 384, 2, 3).mean(axis=(1, 3))
        stored = _decode(s.jpeg)
        assert stored.shape == (384, 384, 3)
        err = stored - centre
        psnr = 10 * np.log10(255.0**2 / np.mean(err**2))
        assert np.abs(err).mean() < 4.0 and psnr > 30.0, (key, np.abs(err).mean(), psnr)
        # Log-mels: the 8-bit spectrogram decoded and standardised from the definitions, to float16 rounding.
        pixels = np.asarray(Image.open(soundingearth / "spectrograms" / f"{key}.jpg").convert("L"))
        assert s.mel.dtype == np.float16 and s.mel.shape == pixels.shape
        np.testing.assert_allclose(s.mel.astype(np.float64), log_mel_from_pixels(pixels), atol=4e-3, rtol=1e-3)


def test_cache_matches_what_the_engine_loader_reads(soundingearth: Path, cache: Path) -> None:
    """Same keys, coordinates and splits as the engine's own reading of the folder."""
    source = open_source(soundingearth, DATA)
    expected = {r.key: (r.lon, r.lat, split) for r, split in zip(source.records, source.splits, strict=True)}
    got = {k: (s.lon, s.lat, s.split) for k, s in _all_samples(cache).items()}
    assert got == {k: v for k, v in expected.items() if k != CORRUPT_KEY}


def test_index_counts_splits_and_skips(cache: Path) -> None:
    index = read_index(cache)
    assert index.geometry == ShardGeometry(region=768, stored=384, quality=90)
    assert index.n_mels == 128
    assert sum(index.counts.values()) == N_ROWS - 3
    assert index.skipped == {"unreadable image": 1, "missing audio": 1, "bad coordinates": 1}
    assert index.extra["log_mel"]["normalised"] is True and index.extra["data"]["stored_size"] == 384
    for shard in index.shards:
        assert sum(1 for _ in iter_shard(index.path(shard))) == shard.count
        assert all(s.split == shard.split for s in iter_shard(index.path(shard)))
        assert shard.name.startswith(shard.split + "-")


def test_rerun_keeps_finished_shards_and_rebuilds_the_rest(soundingearth: Path, cache: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "cache"
    shutil.copytree(cache, out)
    names = sorted(p.name for p in out.glob("*.tar"))
    original = {n: (out / n).read_bytes() for n in names}
    (out / names[0]).unlink()  # a shard that never finished
    side = out / names[1].replace(".tar", ".json")
    side.write_text(json.dumps({**json.loads(side.read_text()), "plan": "another plan"}))
    (out / "train-000009.tar.tmp").write_bytes(b"partial")
    (out / "index.json").unlink()
    summary = prepare_shards(soundingearth, out, _cfg(workers=1))
    assert summary.reused == len(names) - 2
    assert not list(out.glob("*.tmp"))
    for n in names:  # rebuilt shards are byte-identical: the plan and the coding are deterministic
        assert (out / n).read_bytes() == original[n], n
    assert read_index(out).counts == read_index(cache).counts


def test_cancelled_run_continues(soundingearth: Path, tmp_path: Path) -> None:
    job = Job()

    def cancel_after_first_shard(done: int, total: int | None, message: str) -> None:
        if done > 0:
            job.cancel()

    job._on_progress = cancel_after_first_shard
    out = tmp_path / "cache"
    with pytest.raises(Cancelled):
        prepare_shards(soundingearth, out, _cfg(workers=1), job)
    finished = {p.name for p in out.glob("*.json") if p.name != "index.json"}
    assert finished and not (out / "index.json").exists()
    summary = prepare_shards(soundingearth, out, _cfg(workers=1))
    assert summary.reused == len(finished)
    assert sum(summary.counts.values()) == N_ROWS - 3


def test_torch_coding_path_matches_cpu_path(soundingearth: Path, cache: Path, tmp_path: Path) -> None:
    """The nvJPEG code path, run with torchvision's CPU codec, stores the same samples."""
    from engine.shards.gpu_prepare import build_shards_cuda

    cfg = _cfg()
    source = open_source(soundingearth, DATA)
    plans = plan_shards(source.records, source.splits, cfg)
    out = tmp_path / "cache"
    out.mkdir()
    sidecars = dict(build_shards_cuda(plans, out, cfg, device="cpu", batch=4))
    skipped = [(reason, keys) for s in sidecars.values() for reason, keys in s["skipped"].items()]
    assert skipped == [("unreadable image", [CORRUPT_KEY])]
    cpu = _all_samples(cache)
    for plan in plans:
        for s in iter_shard(out / plan.name):
            ref = cpu[s.key]
            assert (s.lon, s.lat, s.split) == (ref.lon, ref.lat, ref.split)
            assert np.abs(_decode(s.jpeg) - _decode(ref.jpeg)).mean() < 3.0
            np.testing.assert_array_equal(s.mel, ref.mel)


def test_damaged_samples_in_a_shard_are_skipped_and_counted(tmp_path: Path) -> None:
    mel = np.zeros((4, 5), np.float16)
    good = RawSample("1", b"jpegbytes", mel, 1.0, 2.0, "train")
    write_shard(tmp_path / "train-000000.tar", [good, RawSample("2", b"x", mel, 1.0, 2.0, "train"),
                                                RawSample("3", b"y", mel, 3.0, 4.0, "train")], {})
    # Damage sample 2's log-mel in place (same length, so the tar stays readable).
    data = bytearray((tmp_path / "train-000000.tar").read_bytes())
    at = data.find(b"\x93NUMPY", data.find(b"2.npy"))
    data[at:at + 6] = b"NOTNPY"
    (tmp_path / "train-000000.tar").write_bytes(bytes(data))
    reasons: list[tuple[str, str]] = []
    keys = [s.key for s in iter_shard(tmp_path / "train-000000.tar", lambda r, k: reasons.append((r, k)))]
    assert keys == ["1", "3"] and reasons == [("unreadable log-mel or metadata", "2")]
    (tmp_path / "cut.tar").write_bytes(bytes(data[:1536]))  # a shard cut off mid-member
    reasons.clear()
    keys = [s.key for s in iter_shard(tmp_path / "cut.tar", lambda r, k: reasons.append((r, k)))]
    assert keys == [] and reasons[-1][0] == "damaged shard"


def test_bad_inputs_get_one_line_errors(soundingearth: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["prepare", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c1")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path / 'nowhere'}: not found; point --data at a "
                                               "SoundingEarth folder or a pair table")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["prepare", "--data", str(soundingearth), "--out", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {other}: is not empty and not a cache (holds 'notes.txt'); name a new folder, "
                   "or the folder of an earlier prepare run to continue it"]
    assert main(["prepare", "--data", str(soundingearth), "--out", str(tmp_path / "c3"), "--stored-size",
                 "900"]) == 2
    assert "--stored-size" in capsys.readouterr().err
    assert main(["prepare", "--data", str(soundingearth), "--out", str(tmp_path / "c4"), "--preset", "nope"]) == 2
    assert "--preset nope: no such preset" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="not a folder of prepared shards"):
        read_index(tmp_path)
