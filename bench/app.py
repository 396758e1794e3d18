"""Measure the desktop app's responsiveness (prints figures; never pass/fail).

    python bench/app.py                # 50,000-tile atlas, cached in ~/.cache/soundscape-mapper/bench
    python bench/app.py --tiles 5000   # a quicker run of the same code

Figures (targets from issue 5, on the 2-core machine):
  * time to first window: process start -> the main window's first paint (target <= 3 s), and to the
    atlas on screen;
  * tile click -> recordings list shown (<= 100 ms), over random tiles of the big atlas;
  * 10 s clip -> heat map over every tile (<= 300 ms): decode, front-end, embedding, scoring, drawing;
  * longest GUI-thread stall while an atlas builds in the background (<= 100 ms), measured as the
    largest gap between ticks of a 5 ms timer.

The model is the shipped demo bundle (resources/demo-bundle); without it, an untrained model of the
same architecture (demo-cpu preset) is exported, which costs the same to run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEMO_CPU_MODEL = {"image_arch": "resnet18", "audio_arch": "resnet18", "image_width": 16, "audio_width": 16,
                  "embed_dim": 128, "image_size": 96}
CLIP = "S4A03895_20190522_060000.wav"  # 10 s real field recording


def synthetic_geotiff(path: Path, side_px: int, pixel_m: float = 10.0, seed: int = 0) -> Path:
    """A seeded RGB GeoTIFF in UTM 33N with smooth land-like patches (enough texture to tile)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from scipy.ndimage import zoom

    rng = np.random.default_rng(seed)
    coarse = rng.random((3, side_px // 32 + 2, side_px // 32 + 2))
    field = np.stack([zoom(c, 32, order=3)[:side_px, :side_px] for c in coarse])
    noise = rng.normal(0, 0.05, field.shape)
    rgb = np.clip((field * 0.7 + noise + 0.15) * 255, 0, 255).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=side_px, height=side_px, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500_000, 5_000_000, pixel_m, pixel_m),
                       tiled=True, blockxsize=256, blockysize=256) as ds:
        ds.write(rgb)
    return path


def get_bundle(cache: Path) -> Path:
    shipped = ROOT / "resources" / "demo-bundle"
    if (shipped / "manifest.json").is_file():
        return shipped
    out = cache / "untrained-demo-cpu-bundle"
    if not (out / "manifest.json").is_file():
        from tests.app.fixtures_data import export_untrained_bundle

        print("exporting an untrained demo-cpu-shaped model (no resources/demo-bundle yet)...", flush=True)
        export_untrained_bundle(out, model=DEMO_CPU_MODEL)
    return out


def get_atlas(cache: Path, bundle: Path, tiles: int, realdata: Path) -> Path:
    """A ``tiles``-tile atlas built by the real builder (cached per bundle and size)."""
    import math

    from engine.atlas import build_atlas, open_atlas
    from engine.bundle.format import load_bundle
    from engine.progress import TqdmJob
    from tests.app.fixtures_data import write_pair_table

    b = load_bundle(bundle, verify_hashes=False)
    out = cache / f"atlas-{tiles}-{b.short_id}"
    side_tiles = int(math.ceil(math.sqrt(tiles)))
    tif = cache / f"bench-{side_tiles}.tif"
    if not tif.is_file():
        synthetic_geotiff(tif, side_tiles * 10)
    try:
        if len(open_atlas(out).tiles.ids) >= tiles and not open_atlas(out).manifest.get("reembed"):
            return out
    except Exception:
        pass
    print(f"building a {side_tiles ** 2:,}-tile atlas with the real builder (cached in {out})...", flush=True)
    table = write_pair_table(cache / "bench-pairs.csv", sorted((realdata / "audio").glob("*.wav")))
    with TqdmJob("atlas", unit="tile") as job:
        build_atlas(out, b, imagery=[tif], tile_px=10, recordings=table, job=job)
    return out


# ----------------------------------------------------------------------------------- first window

def child_first_window(atlas: str, bundle: str) -> None:
    """Run as a child process: start the app as `soundscape` does and report paint/atlas times."""
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication([sys.argv[0]])
    marks: dict[str, float] = {}

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):  # noqa: N802
            if event.type() == QEvent.Type.Paint and isinstance(obj, QMainWindow) and "window" not in marks:
                marks["window"] = time.time()
            return False

    spy = FirstPaint()
    app.installEventFilter(spy)

    def poll() -> None:
        window = next((w for w in app.topLevelWidgets() if isinstance(w, QMainWindow)), None)
        if window is not None and getattr(window, "state", None) and window.state.project.atlas is not None \
                and "atlas" not in marks:
            marks["atlas"] = time.time()
        if "window" in marks and "atlas" in marks:
            print(json.dumps(marks), flush=True)
            for w in app.topLevelWidgets():
                w.close()
            app.quit()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(5)
    from app.main import main

    main(["--atlas", atlas, "--bundle", bundle])


def first_window(atlas: Path, bundle: Path, cache: Path, runs: int) -> tuple[list[float], list[float]]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(cache / "cfg"), XDG_DATA_HOME=str(cache / "data"))
    windows, atlases = [], []
    for _ in range(runs):
        start = time.time()
        out = subprocess.run([sys.executable, __file__, "--child-first-window", str(atlas), str(bundle)],
                             env=env, capture_output=True, text=True, timeout=300)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
        if line is None:
            raise RuntimeError(out.stderr[-2000:])
        marks = json.loads(line)
        windows.append(marks["window"] - start)
        atlases.append(marks["atlas"] - start)
    return windows, atlases


# ---------------------------------------------------------------------------------- in-process

def in_process(atlas: Path, bundle: Path, cache: Path, realdata: Path, clicks: int, queries: int,
               build_tiles: int) -> dict[str, list[float]]:
    import numpy as np
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.controllers import AppContext
    from app.launch import build_app
    from app.services.audio_io import AudioBackend
    from engine.atlas import build_atlas

    app = QApplication.instance() or QApplication([sys.argv[0]])
    ctx = AppContext(config_dir=cache / "cfg-inproc", data_dir=cache / "data", extra_bundles=[bundle])
    window, state, controller = build_app(ctx, AudioBackend(None, "benchmark"))
    window.resize(1440, 900)
    window.show()
    controller.project.open_atlas(atlas, bundle)
    controller.runner.wait_idle(300)
    a = state.project.atlas
    n = len(a.tiles.ids)
    results: dict[str, list[float]] = {"tiles": [float(n)]}

    # Tile click -> list shown: a real mouse click on the map at a tile's centre.
    rng = np.random.default_rng(0)
    times = []
    for i in rng.choice(n, size=clicks, replace=False):
        window.map.centre_on(float(a.tiles.lon[i]), float(a.tiles.lat[i]), tiles_across=40)
        app.processEvents()
        pos = window.map.lonlat_to_canvas(float(a.tiles.lon[i]), float(a.tiles.lat[i]))
        t0 = time.perf_counter()
        QTest.mouseClick(window.map.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        app.processEvents()
        shown = window.listen.best.rowCount() > 0 and state.selection.tile is not None \
            and state.selection.tile.index == int(i)
        times.append(time.perf_counter() - t0)
        if not shown:
            raise RuntimeError(f"click on tile {i} did not show its list")
        controller.runner.wait_idle(30)
    results["click"] = times

    # 10 s clip -> heat map: open the file, until the heat map is drawn.
    clip = realdata / "audio" / CLIP
    window.map.show_all()
    times = []
    done: list[float] = []

    def drawn(result: object) -> None:  # runs after the map's own listener drew the heat map
        done.append(time.perf_counter())

    state.query.changed.connect(drawn)
    for _ in range(queries):
        done.clear()
        t0 = time.perf_counter()
        window.open_audio_file(clip)
        while not done:
            app.processEvents()
            time.sleep(0.001)
        times.append(done[0] - t0)
        if window.map.heat_values is None or window.map.heat_values.size != n:
            raise RuntimeError("the heat map does not cover every tile")
    state.query.changed.disconnect(drawn)
    results["query"] = times

    # GUI stall while an atlas builds in the background: the largest gap between ticks of a 5 ms timer,
    # with the map panned now and then as a user would; the same loop without a build is the baseline.
    side = int(np.ceil(np.sqrt(build_tiles)))
    tif = synthetic_geotiff(cache / f"stall-{side}.tif", side * 10, seed=1)
    out = cache / "stall-atlas"
    import shutil

    def measure(task: object | None, seconds: float) -> tuple[list[float], float]:
        gaps: list[float] = []
        clock = QElapsedTimer()
        clock.start()
        last = [clock.nsecsElapsed()]

        def tick() -> None:
            now = clock.nsecsElapsed()
            gaps.append((now - last[0]) / 1e9)
            last[0] = now

        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(tick)
        timer.start()
        t0 = time.perf_counter()
        while (task.running if task is not None else time.perf_counter() - t0 < seconds):
            app.processEvents()
            if len(gaps) % 40 == 0:
                window.map.view.translateBy(x=window.map.mercator_per_pixel() * 3)
            time.sleep(0.001)
        timer.stop()
        return gaps[1:], time.perf_counter() - t0

    results["stall_idle"], _ = measure(None, 3.0)
    shutil.rmtree(out, ignore_errors=True)
    task = controller.runner.submit("bench build", lambda job: build_atlas(out, bundle, imagery=[tif], tile_px=10,
                                                                           job=job))
    results["stall"], build_s = measure(task, 0.0)
    results["build_s"] = [build_s]
    window.close()
    window.deleteLater()
    app.processEvents()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=50_000)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "soundscape-mapper" / "bench")
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--first-window-runs", type=int, default=3)
    parser.add_argument("--build-tiles", type=int, default=3000, help="tiles of the background build")
    parser.add_argument("--child-first-window", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_first_window:
        child_first_window(*args.child_first_window)
        return 0
    logging.basicConfig(level=logging.WARNING)
    realdata = Path(os.environ.get("SOUNDSCAPE_SHARED", ROOT.parent / "shared")) / "realdata"
    if not (realdata / "audio" / CLIP).is_file():
        print(f"needs the real recordings in {realdata}/audio (set SOUNDSCAPE_SHARED)", file=sys.stderr)
        return 2
    args.cache.mkdir(parents=True, exist_ok=True)
    bundle = get_bundle(args.cache)
    atlas = get_atlas(args.cache, bundle, args.tiles, realdata)
    windows, atlases = first_window(atlas, bundle, args.cache, args.first_window_runs)
    r = in_process(atlas, bundle, args.cache, realdata, args.clicks, args.queries, args.build_tiles)
    ms = 1000.0
    print(f"\nSoundscape Mapper app benchmark: {int(r['tiles'][0]):,}-tile atlas, bundle {bundle.name}, "
          f"{os.cpu_count()} CPU cores, Qt platform {os.environ['QT_QPA_PLATFORM']}")
    print(f"  time to first window          median {statistics.median(windows):6.2f} s   "
          f"(max {max(windows):.2f} s; target <= 3 s)")
    print(f"  time to atlas on screen       median {statistics.median(atlases):6.2f} s")
    print(f"  tile click -> list shown      median {statistics.median(r['click']) * ms:6.1f} ms  "
          f"(max {max(r['click']) * ms:.1f} ms over {len(r['click'])} clicks, the first "
          f"{r['click'][0] * ms:.1f} ms; target <= 100 ms)")
    print(f"  10 s clip -> heat map         median {statistics.median(r['query']) * ms:6.1f} ms  "
          f"(max {max(r['query']) * ms:.1f} ms over {len(r['query'])} queries; target <= 300 ms)")
    stall = sorted(r["stall"])
    print(f"  GUI stall during a build      longest {stall[-1] * ms:6.1f} ms  (99th percentile "
          f"{stall[int(0.99 * (len(stall) - 1))] * ms:.1f} ms, 5 ms timer, {len(stall):,} ticks over a "
          f"{r['build_s'][0]:.1f} s build of {args.build_tiles:,} tiles; target <= 100 ms)")
    idle = sorted(r["stall_idle"])
    print(f"  same GUI loop without a build longest {idle[-1] * ms:6.1f} ms  (99th percentile "
          f"{idle[int(0.99 * (len(idle) - 1))] * ms:.1f} ms: the map's own redraws, the baseline)")
    try:
        load = os.getloadavg()[0]
        print(f"  (load average during the run: {load:.1f} on {os.cpu_count()} cores)")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
