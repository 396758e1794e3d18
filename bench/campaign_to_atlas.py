"""Issue 13's acceptance path through the CLI: a generated campaign's recordings -> campaign scan -> train
(field-finetune, from --init RUN or from scratch) -> export -> atlas build -> the atlas opened and queried.
Each step runs under ``/usr/bin/time -v``; the wall time, CPU seconds (user + system) and peak RSS of each
and of all are printed, since on a shared machine the wall time says more about the other jobs.

    python bench/campaign_to_atlas.py --demo DEMO --out WORK [--init RUN] [--epochs N]
        [--train-pythonpath DIR]   (run train/export from another tree, e.g. before two branches merge)

DEMO is a folder written by ``soundscape-engine demo-world --campaign`` (recordings/, sites.csv, imagery/).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(name: str, cmd: list[str], log: Path, pythonpath: str | None = None) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=pythonpath or str(ROOT))
    start = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], stdout=f, stderr=subprocess.STDOUT, env=env, cwd=pythonpath or ROOT)
    wall = time.monotonic() - start
    text = log.read_text(errors="replace")
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", text).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", text).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    print(f"{name:<12} wall {wall:7.1f} s   cpu {user + system:7.1f} s (user {user:.1f}, sys {system:.1f})   "
          f"peak RSS {rss:6.0f} MB   exit {proc.returncode}", flush=True)
    if proc.returncode != 0:
        sys.exit(f"{name} failed; see {log}")
    return {"wall": wall, "cpu": user + system, "rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--init", type=Path, help="run to fine-tune from (default: from scratch)")
    parser.add_argument("--ground-size-m", type=float, default=217.6, help="chips' ground width without --init")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    parser.add_argument("--train-pythonpath", help="PYTHONPATH for train and export")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m", "engine.cli"]
    campaign, run, bundle, atlas = out / "campaign", out / "run", out / "bundle", out / "atlas"
    ortho = args.demo / "imagery" / "ortho.tif"
    steps = [("scan", [*py, "campaign", "scan", "--recordings", str(args.demo / "recordings"), "--sites",
                       str(args.demo / "sites.csv"), "--imagery", str(ortho), "--out", str(campaign)], None)]
    train = [*py, "train", "--data", str(campaign), "--preset", "field-finetune", "--out", str(run)]
    train += ["--init", str(args.init)] if args.init else ["--ground-size-m", f"{args.ground_size_m:g}"]
    train += ["--epochs", str(args.epochs)] if args.epochs else []
    steps += [("train", train, args.train_pythonpath),
              ("export", [*py, "export", "--run", str(run), "--out", str(bundle)], args.train_pythonpath),
              ("atlas build", [*py, "atlas", "build", "--bundle", str(bundle), "--out", str(atlas), "--recordings",
                               str(campaign), "--imagery", str(ortho)], None),
              ("open+query", [*py, "atlas", "query", "--atlas", str(atlas), "--tile", "0", "--hours", "4-8"], None)]
    results = [timed(name, cmd, out / f"{name.replace(' ', '-').replace('+', '-')}.log", pp) for name, cmd, pp in steps]
    wall, cpu = sum(r["wall"] for r in results), sum(r["cpu"] for r in results)
    print(f"{'all':<12} wall {wall:7.1f} s ({wall / 60:.1f} min)   cpu {cpu:7.1f} s ({cpu / 60:.1f} min)   "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
