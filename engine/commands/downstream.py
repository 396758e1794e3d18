"""Downstream transfer, the protocols behind the paper's tables.

  classify  scene classification on UC Merced, AID or NWPU-RESISC45 (linear probe or fine-tuning)
  advance   ADVANCE audiovisual scene classification (frozen encoders, linear classifiers, F1)
  segment   DeepGlobe land-cover segmentation (DeepLab head on our backbone, OA and mIoU)
  report    results files -> Markdown tables in the paper's layout

--weights is a run folder (our pretrained encoders), 'random' (same architecture, random init; pick it
with --arch), or a local torchvision state-dict file (e.g. ImageNet weights you have; nothing is
downloaded). Each protocol writes a results JSON (--out) naming the protocol, split, seed and weights.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from engine.errors import ConfigError

log = logging.getLogger(__name__)

ARCHS = ("resnet18", "resnet34", "resnet50")


def _weights_options(p: argparse.ArgumentParser, audio: bool = False) -> None:
    kinds = "RUN|random" if audio else "RUN|random|FILE"
    p.add_argument("--root", type=Path, required=True, help="the dataset folder as distributed")
    p.add_argument("--weights", required=True, metavar=kinds,
                   help="a run folder, 'random', or a torchvision state-dict file" if not audio else
                   "a run folder (both encoders), or 'random'")
    p.add_argument("--arch", choices=ARCHS, default="resnet18",
                   help="architecture for 'random' and weights files (a run folder knows its own)")
    p.add_argument("--width", type=int, default=64, help="stem width for 'random' (64 = torchvision's)")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best", help="checkpoint of a run folder")
    p.add_argument("--label", help="row name in reports (default: run folder name, 'Random' or file name)")
    p.add_argument("--out", type=Path, required=True, help="results JSON to write")
    p.add_argument("--seed", type=int, default=0, help="split and initialisation seed (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--workers", type=int, default=4, help="image/audio decoding processes (default 4)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="downstream_command", metavar="PROTOCOL", required=True)

    c = sub.add_parser("classify", help="scene classification: UC Merced, AID, NWPU-RESISC45")
    c.add_argument("--dataset", choices=["ucmerced", "aid", "resisc45"], required=True)
    _weights_options(c)
    c.add_argument("--mode", choices=["linear", "finetune"], default="linear",
                   help="linear: logistic regression on frozen features; finetune: whole network + linear head")
    c.add_argument("--split", choices=["stratified", "alternate"], default="stratified",
                   help="stratified seeded split (default), or the authors' every-other-image 50/50 split")
    c.add_argument("--train-fraction", type=float, help="share of each class for training (default 0.5)")
    c.add_argument("--image-size", type=int, help="side images are resized to (default: native, 256/600/256)")
    c.add_argument("--batch-size", type=int, default=64)
    c.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (default 10)")
    c.add_argument("--lr", type=float, default=1e-4, help="fine-tuning backbone lr; the head gets 10x (default 1e-4)")
    c.add_argument("--weight-decay", type=float,
                   help="linear: L2 penalty (default 1e-4); finetune: AdamW weight decay (default 0.05)")
    c.add_argument("--max-iter", type=int, default=500, help="linear: L-BFGS iterations (default 500)")

    a = sub.add_parser("advance", help="ADVANCE audiovisual scene classification (linear evaluation, F1)")
    _weights_options(a, audio=True)
    a.add_argument("--train-fraction", type=float, default=0.8, help="stratified training share (default 0.8)")
    a.add_argument("--repeats", type=int, default=5, help="re-drawn splits to average over (default 5)")
    a.add_argument("--image-size", type=int, default=256, help="side images are resized to (default 256)")
    a.add_argument("--features", choices=["embedding", "backbone"], default="embedding",
                   help="the encoders' embeddings (default, as the paper) or pooled backbone features")
    a.add_argument("--batch-size", type=int, default=64)
    a.add_argument("--weight-decay", type=float, default=1e-4, help="L2 penalty of the logistic regression")
    a.add_argument("--max-iter", type=int, default=500, help="L-BFGS iterations (default 500)")

    s = sub.add_parser("segment", help="DeepGlobe land-cover segmentation (OA, mIoU)")
    s.add_argument("--dataset", choices=["deepglobe"], default="deepglobe")
    _weights_options(s)
    s.add_argument("--head", choices=["deeplabv3plus", "deeplabv3"], default="deeplabv3plus",
                   help="DeepLabv3+ (the paper's, default) or torchvision-style DeepLabv3")
    s.add_argument("--output-stride", type=int, choices=[8, 16], default=16)
    s.add_argument("--head-channels", type=int, default=256, help="ASPP/decoder channels (default 256)")
    s.add_argument("--train-fraction", type=float, default=0.8, help="share of labelled scenes for training")
    s.add_argument("--crop", type=int, default=512, help="training crop side in px (default 512)")
    s.add_argument("--crops-per-image", type=int, default=8, help="random crops per scene per epoch (default 8)")
    s.add_argument("--epochs", type=int, default=20)
    s.add_argument("--batch-size", type=int, default=16, help="crops per optimiser step (default 16)")
    s.add_argument("--lr", type=float, default=1e-4, help="backbone lr; the head gets 10x (default 1e-4)")
    s.add_argument("--weight-decay", type=float, default=1e-4)
    s.add_argument("--eval-tile", type=int, default=1024, help="test scenes predicted in tiles of this side; 0: whole")

    r = sub.add_parser("report", help="results files -> Markdown tables in the paper's layout")
    r.add_argument("results", nargs="+", type=Path, help="results JSON files (rows appear in this order)")
    r.add_argument("--out", type=Path, help="Markdown file to write (default: print)")
    r.add_argument("--f1", choices=["macro", "weighted"], default="macro",
                   help="ADVANCE F1: macro (default) or support-weighted (what the authors' code computes)")


def _check_out(path: Path) -> None:
    if path.is_dir():
        raise ConfigError("--out", f"{path} is a folder", "give a file name such as results.json")


def run(args: argparse.Namespace) -> int:
    if args.downstream_command == "report":
        return _report(args)
    _check_out(args.out)
    import torch

    from engine.downstream.results import write_results

    try:
        result, summary, label = _run_protocol(args)
    except torch.cuda.OutOfMemoryError:
        raise ConfigError("--batch-size", f"the GPU ran out of memory at batch size {args.batch_size}",
                          "lower --batch-size (or --image-size / --crop)") from None
    write_results(args.out, result)
    skipped = result["skipped"]["count"]
    print(f"{result['dataset_title']} ({label}): {summary}"
          f"{f'; {skipped} file(s) skipped' if skipped else ''} -> {args.out}")
    return 0


def _run_protocol(args: argparse.Namespace) -> tuple[dict, str, str]:
    from engine.downstream.weights import load_weights
    from engine.progress import TqdmJob
    from engine.stop_signals import stop_on_signals

    command = args.downstream_command
    encoders = load_weights(args.weights, args.arch, args.width, args.checkpoint, need_audio=command == "advance",
                            seed=args.seed, label=args.label)
    with TqdmJob(f"downstream {command}", unit="step") as job, stop_on_signals(job):
        if command == "classify":
            from engine.downstream.classify import ClassifyConfig, run_classification

            cfg = ClassifyConfig(dataset=args.dataset, root=str(args.root), mode=args.mode, split=args.split,
                                 train_fraction=args.train_fraction, seed=args.seed, image_size=args.image_size,
                                 batch_size=args.batch_size, epochs=args.epochs, lr=args.lr,
                                 weight_decay=args.weight_decay, max_iter=args.max_iter, workers=args.workers,
                                 device=args.device)
            result = run_classification(cfg, encoders, job)
            summary = f"accuracy {100 * result['metrics']['accuracy']:.2f}%"
        elif command == "advance":
            from engine.downstream.advance import AdvanceConfig, run_advance

            cfg = AdvanceConfig(root=str(args.root), train_fraction=args.train_fraction, seed=args.seed,
                                repeats=args.repeats, image_size=args.image_size, features=args.features,
                                weight_decay=args.weight_decay, max_iter=args.max_iter, batch_size=args.batch_size,
                                workers=args.workers, device=args.device)
            result = run_advance(cfg, encoders, job)
            summary = ", ".join(f"{m} F1 {100 * result['metrics'][m]['macro_f1']:.2f}%"
                                for m in ("audio", "image", "both"))
        else:
            from engine.downstream.segment import SegmentConfig, run_segmentation

            cfg = SegmentConfig(root=str(args.root), dataset=args.dataset, head=args.head,
                                output_stride=args.output_stride, head_channels=args.head_channels,
                                train_fraction=args.train_fraction, seed=args.seed, crop=args.crop,
                                crops_per_image=args.crops_per_image, epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                                eval_tile=args.eval_tile, workers=args.workers, device=args.device)
            result = run_segmentation(cfg, encoders, job)
            summary = (f"OA {100 * result['metrics']['overall_accuracy']:.2f}%, "
                       f"mIoU {100 * result['metrics']['mean_iou']:.2f}%")
    return result, summary, encoders.label


def _report(args: argparse.Namespace) -> int:
    from engine.downstream.report import render_report
    from engine.downstream.results import read_results

    text = render_report([read_results(p) for p in args.results], f1=args.f1)
    if args.out is None:
        print(text, end="")
    else:
        _check_out(args.out)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"{len(args.results)} result(s) -> {args.out}")
    return 0
