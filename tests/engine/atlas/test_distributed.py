"""Building an atlas on a Dask cluster: the same bytes as one process, resumable after a worker or the
client dies, and one-line errors for the faults a cluster brings (engine.atlas.distributed)."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from engine.atlas.build import AtlasBuildError, build_atlas
from engine.atlas.format import MANIFEST
from engine.errors import ConfigError, DiskFullError
from tests.engine.atlas import dask_tasks
from tests.engine.atlas.handmade import HandmadeBundle, comparable_files, source_entries

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (the scale extra)")

from engine.atlas import distributed as dist  # noqa: E402 - after the skip

ROOT = Path(__file__).resolve().parents[3]
TIMESTAMPS = ("created_at", "updated_at", "added_at")


@pytest.fixture(scope="module")
def cluster():
    """Two local worker processes (with nannies, which restart a worker that dies), closed at the end."""
    from engine.atlas.distributed import restored_environment

    with restored_environment(), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40) as local, \
            distributed.Client(local, set_as_default=False) as client:
        yield client


def _inputs(imagery: Path) -> dict:
    return {"imagery": [imagery / "RGB.byte.tif"], "tile_px": 32, "part_tiles": 32, "threads": 1}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMESTAMPS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def atlas_bytes(root: Path) -> dict[str, object]:
    """Every file of an atlas; atlas.json and the source entries without their timestamps."""
    return comparable_files(root, _strip)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, bundle: HandmadeBundle, imagery: Path) -> dict:
    out = tmp_path_factory.mktemp("single") / "atlas"
    build_atlas(out, bundle.path, **_inputs(imagery))
    return atlas_bytes(out)


def _on_cluster(out: Path, bundle: HandmadeBundle, imagery: Path, client, **extra):
    args = {**_inputs(imagery), **extra}
    threads = args.pop("threads")
    return dist.build_atlas_on_cluster(out, bundle.path, client=client, threads=threads, **args)


def test_two_workers_give_the_bytes_of_one_process(tmp_path: Path, bundle: HandmadeBundle, imagery: Path,
                                                   cluster, reference: dict, realdata: Path) -> None:
    report = _on_cluster(tmp_path / "atlas", bundle, imagery, cluster)
    got = atlas_bytes(tmp_path / "atlas")
    assert report.tiles_added == got[MANIFEST]["tiles"]["count"] > 100
    assert got == reference
    # Recordings too: 16 per task, the same meta lines and embeddings as one process.
    from tests.engine.atlas.test_build import _pair_table

    table = _pair_table(tmp_path / "t", sorted((realdata / "audio").glob("S4A*.wav"))[:3])
    build_atlas(tmp_path / "r1", bundle.path, recordings=[table], threads=1)
    dist.build_atlas_on_cluster(tmp_path / "r2", bundle.path, client=cluster, recordings=[table], threads=1)
    assert atlas_bytes(tmp_path / "r2") == atlas_bytes(tmp_path / "r1")


def test_a_worker_killed_mid_part_is_replaced_and_the_atlas_is_the_same(
        tmp_path: Path, bundle: HandmadeBundle, imagery: Path, cluster, reference: dict) -> None:
    marker = tmp_path / "crashed"
    _on_cluster(tmp_path / "atlas", bundle, imagery, cluster,
                tile_task=partial(dask_tasks.crash_once_on_part, str(marker), 3))
    assert marker.exists()  # a worker really died in part 3; Dask ran the part again elsewhere
    assert atlas_bytes(tmp_path / "atlas") == reference
    cluster.wait_for_workers(2, timeout=60)  # the nanny restarted it (for the next tests)


def test_a_client_killed_mid_build_resumes_to_the_same_atlas(tmp_path: Path, bundle: HandmadeBundle,
                                                            imagery: Path, cluster, reference: dict) -> None:
    out = tmp_path / "atlas"
    code = (f"from functools import partial; from pathlib import Path\n"
            f"from engine.atlas.distributed import build_atlas_on_cluster\n"
            f"from tests.engine.atlas import dask_tasks\n"
            f"build_atlas_on_cluster(Path({str(out)!r}), Path({str(bundle.path)!r}), scheduler={cluster.scheduler.address!r},"
            f" imagery=[Path({str(imagery / 'RGB.byte.tif')!r})], tile_px=32, part_tiles=32, threads=1,"
            f" tile_task=partial(dask_tasks.slow_part, 0.4))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        parts = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                parts = source_entries(out)[0]["parts_done"]
            except (OSError, ValueError, KeyError, IndexError):
                parts = 0
            if parts >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()
    partial_count = json.loads((out / MANIFEST).read_text())["tiles"]["count"]
    assert 0 < partial_count < reference[MANIFEST]["tiles"]["count"]
    report = _on_cluster(out, bundle, imagery, cluster)  # the same command again continues
    assert report.tiles_added == reference[MANIFEST]["tiles"]["count"] - partial_count
    assert atlas_bytes(out) == reference


def test_imagery_the_workers_cannot_see_is_one_line_and_keeps_the_atlas(
        tmp_path: Path, bundle: HandmadeBundle, imagery: Path, cluster) -> None:
    with pytest.raises(AtlasBuildError) as failure:
        _on_cluster(tmp_path / "atlas", bundle, imagery, cluster, tile_task=dask_tasks.imagery_elsewhere)
    message = str(failure.value)
    assert "not found on worker tcp://" in message and "same paths" in message and "\n" not in message
    manifest = json.loads((tmp_path / "atlas" / MANIFEST).read_text())
    assert source_entries(tmp_path / "atlas")[0]["status"] == "failed" and manifest["tiles"]["count"] == 0


def test_a_worker_of_another_version_is_refused(tmp_path: Path, bundle: HandmadeBundle, imagery: Path, cluster,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Only this (client) process claims another version; the worker processes run the real one.
    monkeypatch.setattr(dist, "package_version", lambda: "0.0.0-other")
    with pytest.raises(ConfigError, match=r"worker tcp://\S+ runs soundscape-mapper .*, this client 0.0.0-other; "
                                          r"install the same version on every worker"):
        _on_cluster(tmp_path / "atlas", bundle, imagery, cluster)


def test_an_unreachable_scheduler_is_one_line(tmp_path: Path, bundle: HandmadeBundle, imagery: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from engine.cli import main

    status = main(["atlas", "build", "--bundle", str(bundle.path), "--out", str(tmp_path / "atlas"),
                   "--imagery", str(imagery / "RGB.byte.tif"), "--scheduler", f"tcp://127.0.0.1:{port}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith(f"error: --scheduler: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert "dask scheduler" in err[-1]


def test_a_full_disk_stops_with_one_line_and_the_same_command_continues(
        tmp_path: Path, bundle: HandmadeBundle, imagery: Path, reference: dict,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.atlas.writer import AtlasWriter

    real_append = AtlasWriter.append_tiles
    calls = {"n": 0}

    def filling(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            self._tiles["embedding"].write(b"\x00" * 100)  # a partly written part, as a full disk leaves it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(self, *args, **kwargs)

    monkeypatch.setattr(AtlasWriter, "append_tiles", filling)
    with pytest.raises(DiskFullError, match="the disk is full .*free some space there and run the command again"):
        build_atlas(tmp_path / "atlas", bundle.path, **_inputs(imagery))
    assert source_entries(tmp_path / "atlas")[0]["parts_done"] == 3
    monkeypatch.setattr(AtlasWriter, "append_tiles", real_append)
    build_atlas(tmp_path / "atlas", bundle.path, **_inputs(imagery))
    assert atlas_bytes(tmp_path / "atlas") == reference


def test_the_cli_starts_and_closes_a_local_cluster(tmp_path: Path, bundle: HandmadeBundle, imagery: Path,
                                                  reference: dict, capsys: pytest.CaptureFixture) -> None:
    import os

    import psutil

    from engine.cli import main

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    environ = dict(os.environ)
    status = main(["atlas", "build", "--bundle", str(bundle.path), "--out", str(tmp_path / "atlas"), "--imagery",
                   str(imagery / "RGB.byte.tif"), "--tile-px", "32", "--threads", "1", "--workers", "2"])
    assert status == 0, capsys.readouterr().err
    got = atlas_bytes(tmp_path / "atlas")
    # The CLI's default parts are 256 tiles (the reference used 32): the same tiles and bytes, other bookkeeping.
    for name in ("tiles/embedding.0.f4", "tiles/lon.f8", "tiles/footprint.f8", "thumbnails.bin"):
        assert got[name] == reference[name]
    time.sleep(0.5)
    assert {p.pid for p in psutil.Process().children(recursive=True) if p.is_running()} <= before  # cluster closed
    # Dask's nannies set OMP/MKL/OPENBLAS_NUM_THREADS=1 in this process for their workers: put back, since
    # processes started later (resumed builds) would round BLAS sums differently and break byte-identity.
    assert dict(os.environ) == environ


def test_a_part_failing_on_every_try_stops_with_one_line_and_keeps_what_was_done(
        tmp_path: Path, bundle: HandmadeBundle, imagery: Path, cluster, reference: dict) -> None:
    from engine.atlas.build import BuildStopped

    with pytest.raises(BuildStopped) as failure:
        _on_cluster(tmp_path / "atlas", bundle, imagery, cluster, tile_task=dask_tasks.always_failing)
    message = str(failure.value)
    assert "(part 2): failed on the workers (RuntimeError: onnxruntime: failed to allocate memory)" in message
    assert "run the same command again" in message and "\n" not in message
    assert source_entries(tmp_path / "atlas")[0]["parts_done"] == 2
    _on_cluster(tmp_path / "atlas", bundle, imagery, cluster)
    assert atlas_bytes(tmp_path / "atlas") == reference
