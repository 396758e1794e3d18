"""The 24-hour profile of acoustic indices on the real Song Meter recordings (one forest, 22 May 2019, files
named S4A03895_20190522_HHMMSS = local start time), as the README shows it: docs/indices_profile.png.

  python bench/indices_profile.py [--audio ../shared/realdata/audio] [--out docs/indices_profile.png]

The indices come from engine.ecology (scikit-maad, the parameters in IndexParameters); each file is placed
at the hour in its name. Prints the table it plots.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.ecology.indices import IndexParameters  # noqa: E402
from engine.ecology.maps import hourly_profile_of_recordings  # noqa: E402
from engine.ecology.table import analyse_recordings, recording_row, recordings_to_analyse  # noqa: E402

PLOTTED = ("ACI", "ADI", "AEI", "BI", "NDSI", "Ht", "Hf", "biophony_share")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, default=ROOT.parent / "shared" / "realdata" / "audio")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "indices_profile.png")
    args = parser.parse_args()

    items, _, _ = recordings_to_analyse(args.audio)
    items = [i for i in items if i.start_local is not None]
    rows = [recording_row(r, "mean") for r in analyse_recordings(items, IndexParameters(), 60.0)]
    hours = np.array([r["hour"] for r in rows])
    print("hour " + " ".join(f"{n:>10}" for n in PLOTTED))
    profiles = {n: hourly_profile_of_recordings(hours, np.array([r[n] for r in rows])) for n in PLOTTED}
    for h in np.flatnonzero(profiles["ACI"].counts):
        print(f"{h:>4} " + " ".join(f"{profiles[n].values[h]:>10.4g}" for n in PLOTTED))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(9.6, 4.4), sharex=True)
    for ax, name in zip(axes.ravel(), PLOTTED, strict=True):
        p = profiles[name]
        have = np.isfinite(p.values)
        ax.plot(np.arange(24)[have], p.values[have], "o-", color="#1f5e2a", markersize=3.5, linewidth=1.2)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([0, 6, 12, 18, 24])
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("local hour", fontsize=8)
    fig.suptitle("Acoustic indices by hour of day: one Song Meter in a forest, 22 May 2019 (scikit-maad)", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
