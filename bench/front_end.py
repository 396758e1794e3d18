"""Benchmark: the audio front-end on one hour of 44.1 kHz stereo audio, on one core.

Writes an hour-long 16-bit stereo WAV (noise, hum, chirps) to a temporary folder, then runs
``engine.audio.file_log_mel`` on it in a fresh process pinned to one CPU with every BLAS/OpenMP
pool limited to one thread, and prints the wall and CPU seconds, the peak resident memory of that
process (and its resident memory after imports, for comparison) and the spectrogram's shape.

Targets (issue 2): <= 10 s on one core, <= 300 MB, streamed.

    .venv/bin/python bench/front_end.py [--minutes 60] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}
RATE = 44100


def write_test_file(path: Path, minutes: float, seed: int = 0) -> float:
    """Write ``minutes`` of 44.1 kHz 16-bit stereo field-recording-like audio in 10 s blocks."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    block = 10 * RATE
    total = int(minutes * 60 * RATE)
    t = np.arange(block) / RATE
    start = time.perf_counter()
    with sf.SoundFile(str(path), "w", samplerate=RATE, channels=2, subtype="PCM_16") as f:
        written = 0
        while written < total:
            n = min(block, total - written)
            noise = np.cumsum(rng.standard_normal((n, 2)), axis=0) * 0.002  # brown-ish rumble
            noise -= noise.mean(axis=0)
            noise += 0.02 * rng.standard_normal((n, 2))
            hum = 0.03 * np.sin(2 * np.pi * 100 * t[:n])[:, None]
            chirp_f = 3000 + 1500 * np.sin(2 * np.pi * 0.7 * t[:n])
            chirp = 0.05 * np.sin(2 * np.pi * np.cumsum(chirp_f) / RATE) * (np.sin(2 * np.pi * 2 * t[:n]) > 0.6)
            f.write(np.clip(noise + hum + chirp[:, None], -1, 1).astype(np.float32))
            written += n
    return time.perf_counter() - start


def measure(path: Path) -> dict[str, float | list[int]]:
    """Run in the pinned child process: time ``file_log_mel`` and read the peak RSS."""
    import resource

    from engine.audio import FrontEndConfig, file_log_mel
    from engine.audio.front_end import mel_filterbank

    cfg = FrontEndConfig()
    mel_filterbank(cfg)  # librosa's import and the filterbank are a one-off cost, not per file
    rss_after_imports = _current_rss_mb()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    mel = file_log_mel(path, cfg)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "rss_after_imports_mb": rss_after_imports,
            "shape": list(mel.shape), "output_mb": mel.nbytes / 2**20}


def _current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the test file (default 60)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the temporary file")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="frontend-bench-") as tmp:
        path = Path(tmp) / "hour.wav"
        made = write_test_file(path, args.minutes)
        print(f"test file: {args.minutes:g} min, 44,100 Hz stereo 16-bit WAV, "
              f"{path.stat().st_size / 2**20:.0f} MB (written in {made:.1f} s)")
        env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        cpu = sorted(os.sched_getaffinity(0))[0]
        child = subprocess.run(["taskset", "-c", str(cpu), sys.executable, __file__, "--measure", str(path)],
                               env=env, capture_output=True, text=True, check=False)
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return 1
        r = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"file_log_mel, one process pinned to CPU {cpu}, 1 thread: {r['wall_s']:.2f} s wall, "
          f"{r['cpu_s']:.2f} s CPU (target <= 10 s); {r['wall_s'] / (args.minutes * 60) * 3600:.2f} s per hour")
    print(f"peak RSS {r['peak_rss_mb']:.0f} MB (target <= 300 MB); after imports {r['rss_after_imports_mb']:.0f} MB; "
          f"output log-mel {r['shape'][0]}x{r['shape'][1]} float32 = {r['output_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
