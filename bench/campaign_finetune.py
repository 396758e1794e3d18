"""Fine-tuning from a run versus training from scratch on a recorder campaign (prints figures; never pass/fail).

    python bench/campaign_finetune.py --campaign CAMPAIGN --init RUN --out DIR [--folds 3] [--variants ...]

For each fold (a blocked split of the campaign's sites drawn with seed 0, 1, ...; its test sites are passed
as ``--holdout-sites``) it trains every variant with the same budget (the field-finetune preset's epochs,
batches and windows per site), evaluates on the held-out sites (``evaluate``, paper protocol, best
checkpoint) and prints median rank, R@1, R@5 and R@10 in both directions, and the wall time of each
``train``. Variants:

  zero-shot      the --init run itself, no training on the campaign
  finetune       --preset field-finetune --init RUN (heads first, then layer4; lr 3e-4)
  finetune-all   the same with the whole backbone trainable from the start
  finetune-head  only the heads train (backbones frozen throughout)
  finetune-low   as finetune at a third of the learning rate (1e-4)
  scratch        the same model from random weights (field-finetune's budget, whole model, lr 3e-4)
  scratch-hi     as scratch with the demo preset's learning rate (2e-3)
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("zero-shot", "finetune", "finetune-all", "finetune-head", "finetune-low", "scratch", "scratch-hi")


def _preset(base: dict, out: Path, name: str, **train: object) -> Path:
    data = json.loads(json.dumps(base))
    data["train"].update(train)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", type=Path, required=True)
    parser.add_argument("--init", type=Path, required=True, help="the run to fine-tune (e.g. the demo model's)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--epochs", type=int, help="override the preset's epochs for every variant")
    parser.add_argument("--halves", action="store_true",
                        help="hold out half the sites instead: fold 0 the western half, fold 1 the eastern half "
                             "(larger test galleries; at most 2 folds)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from engine.campaign import load_campaign
    from engine.campaign.site_splits import split_sites
    from engine.checkpoint import read_run_config
    from engine.cli import main as cli
    from engine.config.run import preset_data

    campaign = load_campaign(args.campaign)
    by_site = campaign.by_site()
    sites = [s for s in campaign.sites if by_site.get(s.name)]
    source = read_run_config(args.init)
    ground = str(source["data"]["ground_size_m"])
    base = preset_data("field-finetune")
    args.out.mkdir(parents=True, exist_ok=True)
    presets = {
        "finetune": "field-finetune",
        "finetune-all": str(_preset(base, args.out, "finetune-all", freeze_epochs=0, trainable="all")),
        "finetune-head": str(_preset(base, args.out, "finetune-head", trainable="head")),
        "finetune-low": str(_preset(base, args.out, "finetune-low", lr=0.0001)),
    }
    scratch = {**base, "model": source["model"]}
    presets["scratch"] = str(_preset(scratch, args.out, "scratch", freeze_epochs=0, trainable="all"))
    presets["scratch-hi"] = str(_preset(scratch, args.out, "scratch-hi", freeze_epochs=0, trainable="all", lr=0.002))
    rows: dict[str, list[dict]] = {v: [] for v in args.variants}
    for fold in range(args.folds):
        if args.halves:
            order = sorted(sites, key=lambda s: s.lon)
            half = order[:len(order) // 2] if fold == 0 else order[len(order) // 2:]
            held, rule = ",".join(s.name for s in half), f"{'western' if fold == 0 else 'eastern'} half"
        else:
            splits, rule = split_sites([s.name for s in sites], [s.lon for s in sites], [s.lat for s in sites],
                                       seed=fold)
            held = ",".join(s.name for s, split in zip(sites, splits, strict=True) if split == "test")
        print(f"fold {fold}: held-out sites {held} ({rule})", flush=True)
        for variant in args.variants:
            tag = f"{'half' if args.halves else 'fold'}{fold}"
            run = args.out / f"{tag}-{variant}"
            seconds = 0.0
            if variant == "zero-shot":
                run = args.init
            else:
                cmd = ["train", "--data", str(args.campaign), "--preset", presets[variant], "--out", str(run),
                       "--holdout-sites", held]
                cmd += ["--init", str(args.init)] if variant.startswith("finetune") else ["--ground-size-m", ground]
                if args.epochs:
                    cmd += ["--epochs", str(args.epochs)]
                started = time.perf_counter()
                if not (run / "checkpoints" / "last.pt").exists():
                    assert cli(cmd) == 0, cmd
                seconds = time.perf_counter() - started
            out = args.out / f"{tag}-{variant}-eval.json"
            assert cli(["evaluate", "--run", str(run), "--data", str(args.campaign), "--holdout-sites", held,
                        "--out", str(out)]) == 0
            report = json.loads(out.read_text())
            row = {"seconds": seconds, "gallery": report["gallery"]}
            for d, short in (("image_to_audio", "i2a"), ("audio_to_image", "a2i")):
                for key in ("median_rank", "R@1", "R@5", "R@10"):
                    row[f"{short} {key}"] = report[d][key]
            rows[variant].append(row)
            print(f"  {variant:13s} " + "  ".join(f"{k} {v:.3g}" for k, v in row.items()), flush=True)
    print("\nmean over folds (held-out sites; paper protocol; best checkpoint):")
    for variant, results in rows.items():
        keys = results[0].keys()
        print(f"  {variant:13s} " + "  ".join(f"{k} {statistics.mean(r[k] for r in results):.3g}" for k in keys))


if __name__ == "__main__":
    main()
