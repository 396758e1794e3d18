"""Train an image encoder and an audio encoder on paired aerial images and recordings.

The data is a SoundingEarth folder as distributed, a pair table (CSV: id, longitude, latitude, image,
audio), the demo world, or a recorder campaign (a folder made by 'campaign scan': one pair per site, its
chip cut from the imagery and random windows of its hours). --init RUN fine-tunes another run's encoders.
The run folder gets config.json, checkpoints/{last,best}.pt, metrics.jsonl (the app plots it live) and
TensorBoard events. Ctrl-C (SIGINT) or SIGTERM (schedulers, the app's Cancel) saves 'last' and stops
cleanly; --resume continues exactly where the run stopped (a run that stopped before its first checkpoint
starts again from scratch). One training at a time per run folder (RUN/.lock).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from engine.commands import add_renamed_flag
from engine.config.run import RunConfig
from engine.stop_signals import stop_on_signals

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="dataset: SoundingEarth folder, pair table (.csv or folder with "
                        "pairs.csv), demo world or campaign folder (default on --resume: the run's own data)")
    parser.add_argument("--preset", default="demo-cpu",
                        help="preset name (demo-cpu, paper-r18, paper-r50, tiny) or a preset .json file "
                             "(default demo-cpu)")
    parser.add_argument("--out", type=Path, required=True, help="run folder to create (or to continue with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    parser.add_argument("--epochs", type=int, help="number of epochs (on --resume: the new total)")
    parser.add_argument("--batch-size", type=int, help="pairs per batch")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the preset's, usually auto)")
    parser.add_argument("--seed", type=int, help="random seed (weights, data order, augmentation)")
    parser.add_argument("--workers", type=int, help="data loader processes")
    parser.add_argument("--image-weights", type=Path, metavar="FILE",
                        help="start the image backbone from a local torchvision state-dict file (never downloaded)")
    parser.add_argument("--audio-source", choices=["auto", "spectrogram", "raw"],
                        help="SoundingEarth: the archive's spectrogram JPEGs or raw_audio through our front-end")
    parser.add_argument("--split-rule", choices=["auto", "paper", "blocked", "column"],
                        help="how pairs are split into train/val/test (default auto)")
    parser.add_argument("--block-km", type=float, help="cell size of the blocked split (default 10)")
    field = parser.add_argument_group("recorder campaigns and fine-tuning")
    field.add_argument("--init", type=Path, metavar="RUN",
                       help="start both encoders from this run's best.pt (else last.pt); the run's model, front-end "
                            "and ground size are kept (see the field-finetune preset)")
    field.add_argument("--holdout-sites", metavar="A,B,C",
                       help="a campaign's test sites by name (default: drawn by spatial blocks)")
    field.add_argument("--ground-size-m", type=float, metavar="M",
                       help="a campaign's chip ground width seen by the encoder (default: the --init run's or the "
                            "preset's)")
    field.add_argument("--samples-per-site", type=int, metavar="K",
                       help="random audio windows drawn per training site in an epoch (campaigns)")
    parser.add_argument("--sample-cache-dir", type=Path, metavar="DIR",
                        help="where decoded samples are cached (default: the user cache folder)")
    add_renamed_flag(parser, "--cache-dir", "--sample-cache-dir", "sample_cache_dir", type=Path)
    parser.add_argument("--no-sample-cache", action="store_true",
                        help="decode every sample on the fly (no decoded-sample cache)")
    add_renamed_flag(parser, "--no-cache", "--no-sample-cache", "no_sample_cache", flag=True)
    shards = parser.add_argument_group("training from prepared shards (see 'soundscape-engine prepare')")
    shards.add_argument("--shards", type=Path, metavar="SHARDS", help="train from this folder of prepared shards "
                        "with the shard pipeline (JPEG decoding and batch augmentation on the device, prefetched); "
                        "under torchrun each process reads its own shards")
    add_renamed_flag(shards, "--cache", "--shards", "shards", type=Path)
    shards.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the encoders (with --shards)")
    shards.add_argument("--channels-last", action="store_true",
                        help="channels_last memory format (with --shards, CUDA)")
    shards.add_argument("--compile", action="store_true", help="torch.compile the encoder pair (with --shards, CUDA)")
    shards.add_argument("--compile-mode", choices=["default", "reduce-overhead", "max-autotune"], default="default",
                        help="with --compile: torch.compile's mode; reduce-overhead replays the step as CUDA graphs "
                             "(fewer host launches)")
    shards.add_argument("--compile-scope", choices=["model", "step"], default="model",
                        help="with --compile: compile the encoder pair, or the forward pass and the loss as one "
                             "graph")
    shards.add_argument("--jpeg-decode", choices=["device", "workers"], default="device",
                        help="with --shards: decode the stored JPEGs on the device in batches (nvJPEG; default) or "
                             "in the loader processes (libjpeg-turbo; the GPU then only augments and trains)")


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """The run's config: the preset (or, on --resume, the run's config.json) plus the options given."""
    from engine.checkpoint import read_run_config
    from engine.config.run import load_preset
    from engine.errors import CheckpointError, ConfigError

    if args.resume:
        last = args.out / "checkpoints" / "last.pt"
        # A run folder without a checkpoint (stopped before its first epoch ended) restarts from its config.
        if not last.is_file() and not (args.out / "config.json").is_file():
            raise CheckpointError(f"--resume {last}", "no checkpoint to resume from",
                                  "start a new run without --resume, or name the run folder with --out")
        cfg = RunConfig.from_dict(read_run_config(args.out))
        for option, value in (("--batch-size", args.batch_size), ("--seed", args.seed), ("--lr", args.lr),
                              ("--image-weights", args.image_weights), ("--audio-source", args.audio_source),
                              ("--split-rule", args.split_rule), ("--block-km", args.block_km),
                              ("--init", args.init), ("--holdout-sites", args.holdout_sites),
                              ("--ground-size-m", args.ground_size_m), ("--samples-per-site", args.samples_per_site)):
            if value is not None:
                raise ConfigError(option, "cannot change when resuming (the run would not continue exactly)",
                                  "drop the option, or start a new run")
    else:
        cfg = load_preset(args.preset)
        cfg = cfg.replace("train", batch_size=args.batch_size, lr=args.lr, seed=args.seed)
        cfg = cfg.replace("data", audio_source=args.audio_source, split_rule=args.split_rule, block_km=args.block_km)
        if args.image_weights is not None:
            from dataclasses import replace

            cfg = replace(cfg, image_weights=str(args.image_weights.resolve()))
        if args.init is not None:
            if args.image_weights is not None:
                raise ConfigError("--image-weights", "cannot be combined with --init (which sets both encoders)",
                                  "drop one of them")
            from engine.config.run import preset_data
            from engine.train.init import apply_init

            cfg = apply_init(cfg, preset_data(args.preset), args.init)
        cfg = cfg.replace("data", ground_size_m=args.ground_size_m, samples_per_site=args.samples_per_site,
                          holdout_sites=holdout_names(args.holdout_sites))
    cfg = cfg.replace("train", epochs=args.epochs, device=args.device)
    cfg = cfg.replace("data", num_workers=args.workers, cache=False if args.no_sample_cache else None)
    return cfg


def holdout_names(text: str | None) -> tuple[str, ...] | None:
    """``--holdout-sites A,B,C`` as names (None when not given)."""
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        from engine.errors import ConfigError

        raise ConfigError("--holdout-sites", "names no site", "give site names separated by commas, e.g. A,B,C")
    return names


def cpu_threads_wait_passively() -> None:
    """Let idle CPU threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE`` unless already set).

    PyTorch's OpenMP threads spin while they wait for work; on a CPU shared with other programs (the
    app's own window, a browser, other jobs) the spinning threads steal the cores the working ones
    need; on a busy machine that costs far more than passive waiting costs on idle cores (the figures
    are in the README). Set ``OMP_WAIT_POLICY=ACTIVE`` on a dedicated machine. It only takes effect
    before torch is first imported, so it is called before any import of torch.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def check_out_folder(out: Path) -> None:
    """Refuse an ``--out`` that can never be a run folder (a file, or a path through a file) with one line,
    before anything is created."""
    from engine.errors import ConfigError

    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == out else f"lies inside {folder}, which is a file"
                raise ConfigError(f"--out {out}", f"{what}, not a folder", "name a folder for the run")
            return


def run(args: argparse.Namespace) -> int:
    cpu_threads_wait_passively()
    from engine.checkpoint import read_run_config
    from engine.errors import ConfigError
    from engine.progress import TqdmJob
    from engine.train.loop import train

    check_out_folder(args.out)
    cfg = resolve_config(args)
    if args.shards is None and args.resume:  # a run trained from shards continues from them
        shards = read_run_config(args.out).get("dataset", {}).get("cache")  # the key of RUN/config.json
        args.shards = Path(shards) if shards else None
    if args.shards is not None:
        return _run_from_shards(args, cfg)
    if args.bf16 or args.channels_last or args.compile or args.jpeg_decode != "device":
        raise ConfigError("--bf16/--channels-last/--compile/--jpeg-decode", "apply to training from shards only",
                          "add --shards SHARDS (made by 'soundscape-engine prepare')")
    data = args.data
    if data is None:
        if not args.resume:
            raise ConfigError("--data", "is required for a new run", "name the dataset folder or pair table")
        data = Path(read_run_config(args.out).get("dataset", {}).get("path", ""))
    from tqdm.contrib.logging import logging_redirect_tqdm

    # Log lines go above the progress bar instead of through it.
    with TqdmJob("training", unit="step") as job, stop_on_signals(job), logging_redirect_tqdm():
        result = train(cfg, data, args.out, resume=args.resume, job=job, cache_root=args.sample_cache_dir,
                       announce=lambda text: print(text, flush=True))
    val = (result.metrics or {}).get("val")
    print(f"{result.status}: {result.epoch} epochs, {result.step} steps; run folder {result.run_dir}")
    if val:
        i2a, a2i = val["image_to_audio"], val["audio_to_image"]
        print(f"last validation ({val['gallery']} pairs, paper protocol): median rank image->audio "
              f"{i2a['median_rank']:.1f}, audio->image {a2i['median_rank']:.1f}; best epoch {result.best_epoch}")
    return 0

def _run_from_shards(args: argparse.Namespace, cfg: RunConfig) -> int:
    """``train --shards``: the shard pipeline (:mod:`engine.shard_training.train_loop`); torchrun starts one
    process per GPU."""
    import os

    from engine.progress import Job, TqdmJob
    from engine.shard_training.compute import ComputeConfig
    from engine.shard_training.train_loop import train_from_shards

    compute = ComputeConfig(bf16=args.bf16, channels_last=args.channels_last, compile=args.compile,
                            compile_mode=None if args.compile_mode == "default" else args.compile_mode,
                            compile_scope=args.compile_scope)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    job = TqdmJob("training", unit="step") if main_rank else Job()
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with stop_on_signals(job), logging_redirect_tqdm():
            result = train_from_shards(cfg, args.shards, args.out, resume=args.resume, job=job, compute=compute,
                                      jpeg_decode=args.jpeg_decode, announce=lambda text: print(text, flush=True))
    finally:
        if isinstance(job, TqdmJob):
            job.close()
    if main_rank:
        print(f"{result.status}: {result.epoch} epochs, {result.step} steps; run folder {result.run_dir}")
    return 0
