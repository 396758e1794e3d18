"""Measure ``campaign scan`` on a big campaign (prints figures; never pass/fail).

    python bench/campaign_scan.py                  # 100,000 files in 200 folders (about 0.5 GB on disk)
    python bench/campaign_scan.py --files 10000    # a quicker run of the same code

Makes N tiny recorder files (a WAV header and 0.1 s of 8 kHz audio each, so the scan's per-file cost is
all header reading, not audio): AudioMoth-named files with the AudioMoth comment, plain AudioMoth names,
Song Meter names, and one non-audio file per folder; a sites table matches the folders. Then runs the scan
as a child process (the CLI, with --min-seconds 0.05) and prints files per second and the child's peak
resident memory (the issue's target: under 1 GB for 100,000 files).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.campaign.writers import audiomoth_comment, audiomoth_name, write_audiomoth_wav  # noqa: E402


def make_campaign(root: Path, files: int, folders: int) -> Path:
    rate = 8000
    samples = (0.05 * np.sin(np.arange(rate // 10) * 0.3)).astype(np.float32)
    plain = root / "_plain.wav"
    rec = root / "recordings"
    start = datetime(2023, 4, 1, tzinfo=UTC)
    per_folder = -(-files // folders)
    made = 0
    with open(root / "sites.csv", "w") as table:
        table.write("site,longitude,latitude,timezone\n")
        for f in range(folders):
            site = f"site{f:04d}"
            table.write(f"{site},{10 + f * 0.001:.4f},{50 + f * 0.001:.4f},Europe/Berlin\n")
            folder = rec / site
            folder.mkdir(parents=True)
            (folder / "CONFIG.TXT").write_text("not audio\n")
            device = f"24F3{f:012X}"
            # Each folder's audio differs, as recorders at different sites do (the scan tells copies by it).
            sf.write(plain, np.round(samples * (1 + f) * 100).astype(np.int16), rate, subtype="PCM_16")
            plain_bytes = plain.read_bytes()
            for k in range(min(per_folder, files - made)):
                moment = start + timedelta(minutes=10 * k)
                kind = k % 3
                if kind == 0:  # AudioMoth with its comment
                    write_audiomoth_wav(folder / audiomoth_name(moment), samples, rate,
                                        audiomoth_comment(moment, device), device)
                elif kind == 1:  # AudioMoth name only
                    (folder / audiomoth_name(moment)).with_suffix(".wav").write_bytes(plain_bytes)
                else:  # Song Meter name, local time
                    (folder / f"S4A{f:05d}_{moment:%Y%m%d_%H%M%S}.wav").write_bytes(plain_bytes)
                made += 1
    plain.unlink()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="make the campaign here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="campaign-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        make_campaign(root, args.files, args.folders)
        print(f"made {args.files} files in {args.folders} folders in {time.perf_counter() - t0:.1f} s")
        out = root / "campaign"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "engine.cli", "campaign", "scan", "--recordings",
                               str(root / "recordings"), "--sites", str(root / "sites.csv"), "--min-seconds", "0.05",
                               "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(proc.stdout.strip())
        if proc.returncode:
            print(proc.stderr[-2000:])
        total = args.files + args.folders
        print(f"scan: {total} files (incl. {args.folders} non-audio) in {seconds:.1f} s = {total / seconds:.0f} files/s; "
              f"peak RSS of the scan process {peak_mb:.0f} MB; cores {os.cpu_count()}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
