"""File > New project from recordings…: scan a recorder campaign, then fine-tune -> export -> atlas build.

Qt-free. The scan calls :mod:`engine.campaign` directly (torch-free, streamed, cancellable); the three
engine steps run as subprocesses through the Train tab's plumbing (:func:`app.services.training.run_process`,
its metrics.jsonl tail for progress); a cancel sends SIGTERM to the running child and is reported as
cancelled. Everything a project writes goes under one folder::

    PROJECT/campaign/   the scanned campaign (campaign.json, recordings.csv, sites.csv, skipped.csv)
    PROJECT/run/        the fine-tuning run (metrics.jsonl, checkpoints, app-train.log)
    PROJECT/bundle/     the exported model bundle
    PROJECT/atlas/      the atlas of the imagery and the campaign's recordings (with their times)
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.services.training import MetricsTail, engine_unavailable_reason, run_process
from engine.errors import Cancelled, UserInputError
from engine.progress import Job

log = logging.getLogger(__name__)

FINETUNE_PRESET = "field-finetune"
DEFAULT_GROUND_SIZE_M = 200.0  # chips' ground width when training from scratch and no bundle says one
PHASES = ("training", "exporting", "building the atlas")
# Share of the whole pipeline's progress bar each phase takes (training dominates the time).
PHASE_SPAN = {"training": (0.0, 0.8), "exporting": (0.8, 0.85), "building the atlas": (0.85, 1.0)}
_TQDM = re.compile(rb"(\d+)/(\d+) \[")


@dataclass(frozen=True)
class ScanRequest:
    """What the dialog asks for. ``sites_table`` only when the files carry no positions."""

    recordings: Path
    imagery: tuple[Path, ...] = ()
    sites_table: Path | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class SitePoint:
    name: str
    lon: float
    lat: float
    files: int
    in_imagery: bool | None


@dataclass(frozen=True)
class ScanOutcome:
    """A finished scan: the campaign folder, its summary (campaign.json's), the summary in words, the
    sites and imagery outlines (lon/lat rings) for the small map, and the skipped files."""

    campaign_dir: Path
    summary: dict[str, Any]
    text: str
    sites: list[SitePoint]
    footprints: list[list[tuple[float, float]]]
    skipped: list[tuple[str, str]]
    warnings: list[str]

    @property
    def no_position(self) -> int:
        """Files skipped for want of a position (then the dialog asks for a sites table)."""
        return int(self.summary.get("skipped_by_reason", {}).get("no position", 0))

    @property
    def usable(self) -> int:
        return int(self.summary.get("usable", 0))


def scan(request: ScanRequest, campaign_dir: Path, job: Job) -> ScanOutcome:
    """Scan the recordings into ``campaign_dir`` (rewritten if it is a campaign already).

    Raises:
        UserInputError: bad input (one line, naming the file and the fix); Cancelled.
    """
    from engine.campaign import load_skipped
    from engine.campaign.report import describe_summary
    from engine.campaign.scan import ScanOptions, scan_to_folder

    if not Path(request.recordings).is_dir():
        raise UserInputError(request.recordings, "recordings folder not found", "choose the folder your recorders' "
                             "files were copied to")
    options = ScanOptions(Path(request.recordings), sites_table=request.sites_table,
                          imagery=tuple(Path(p) for p in request.imagery), timezone=request.timezone)
    result = scan_to_folder(options, Path(campaign_dir), job)
    campaign = result.campaign
    summary = campaign.summary
    sites = [SitePoint(s.name, s.lon, s.lat, s.files, s.in_imagery) for s in campaign.sites]
    return ScanOutcome(campaign_dir=Path(campaign_dir), summary=summary, text=describe_summary(summary),
                       sites=sites, footprints=imagery_outlines(list(campaign.imagery)),
                       skipped=load_skipped(campaign_dir), warnings=list(summary.get("warnings", [])))


def imagery_outlines(paths: Sequence[Path], points: int = 8) -> list[list[tuple[float, float]]]:
    """Each image's bounds as a closed lon/lat ring (edges sampled, since a projected rectangle bends)."""
    from rasterio.warp import transform

    from engine.campaign.footprints import read_footprints

    rings = []
    for fp in read_footprints(list(paths)):
        left, bottom, right, top = fp.bounds
        xs, ys = [], []
        for (x0, y0), (x1, y1) in (((left, top), (right, top)), ((right, top), (right, bottom)),
                                   ((right, bottom), (left, bottom)), ((left, bottom), (left, top))):
            for k in range(points):
                xs.append(x0 + (x1 - x0) * k / points)
                ys.append(y0 + (y1 - y0) * k / points)
        lons, lats = transform(fp.crs, "EPSG:4326", xs, ys)
        ring = list(zip(lons, lats, strict=True))
        rings.append(ring + ring[:1])
    return rings


# ------------------------------------------------------------------------------------- the pipeline

def _manifest(bundle_path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((Path(bundle_path) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def default_init_run(bundle_path: Path) -> Path | None:
    """The training run behind a bundle (its manifest's ``trained_on.run``) when that run is on this
    machine; None otherwise (then the pipeline trains from scratch)."""
    run = (_manifest(bundle_path).get("trained_on") or {}).get("run")
    return Path(run) if isinstance(run, str) and run and Path(run).is_dir() else None


def bundle_ground_size_m(bundle_path: Path) -> float:
    """The ground width a bundle's image encoder learnt (the chips of a from-scratch run are cut as wide,
    so the new model sees the land at the demo model's scale); :data:`DEFAULT_GROUND_SIZE_M` if unknown."""
    size = (_manifest(bundle_path).get("image") or {}).get("ground_size_m")
    return float(size) if isinstance(size, (int, float)) and size > 0 else DEFAULT_GROUND_SIZE_M


@dataclass(frozen=True)
class PipelineSpec:
    """The three engine steps of a new project."""

    campaign_dir: Path
    project_dir: Path
    imagery: tuple[Path, ...]
    init_run: Path | None
    ground_size_m: float = DEFAULT_GROUND_SIZE_M  # only used without init_run (a run brings its own)
    preset: str = FINETUNE_PRESET
    python: str = sys.executable
    holdout_sites: tuple[str, ...] = ()
    extra_train_args: tuple[str, ...] = field(default_factory=tuple)
    attempt: int = 1  # a run again after a cancel or failure writes run-2, bundle-2, atlas-2 (the first kept)

    def _folder(self, name: str) -> Path:
        return self.project_dir / (name if self.attempt == 1 else f"{name}-{self.attempt}")

    @property
    def run_dir(self) -> Path:
        return self._folder("run")

    @property
    def bundle_dir(self) -> Path:
        return self._folder("bundle")

    @property
    def atlas_dir(self) -> Path:
        return self._folder("atlas")

    def next_free(self) -> PipelineSpec:
        """This spec with the first attempt number whose folders do not exist yet."""
        from dataclasses import replace

        spec = self
        while spec.run_dir.exists() or spec.bundle_dir.exists() or spec.atlas_dir.exists():
            spec = replace(spec, attempt=spec.attempt + 1)
        return spec

    def describe_init(self) -> str:
        if self.init_run is None:
            return (f"No run to fine-tune from was found (the demo model's run is not on this machine): training "
                    f"from scratch with the {self.preset} preset, {self.ground_size_m:g} m image chips")
        return f"Fine-tuning from {self.init_run} with the {self.preset} preset"


def pipeline_commands(spec: PipelineSpec) -> list[tuple[str, list[str], Path]]:
    """(phase, command line, log file) of each step: fine-tune (or train), export, atlas build."""
    engine = [spec.python, "-m", "engine.cli"]
    train = [*engine, "train", "--data", str(spec.campaign_dir), "--preset", spec.preset, "--out", str(spec.run_dir)]
    if spec.init_run is not None:
        train += ["--init", str(spec.init_run)]
    else:  # from scratch: no run says how much ground a chip covers
        train += ["--ground-size-m", f"{spec.ground_size_m:g}"]
    if spec.holdout_sites:
        train += ["--holdout-sites", ",".join(spec.holdout_sites)]
    train += list(spec.extra_train_args)
    export = [*engine, "export", "--run", str(spec.run_dir), "--out", str(spec.bundle_dir)]
    atlas = [*engine, "atlas", "build", "--bundle", str(spec.bundle_dir), "--out", str(spec.atlas_dir),
             "--recordings", str(spec.campaign_dir)]
    if spec.imagery:
        atlas += ["--imagery", *map(str, spec.imagery)]
    return [("training", train, spec.run_dir / "app-train.log"),
            ("exporting", export, spec.run_dir / "app-export.log"),
            ("building the atlas", atlas, spec.run_dir / "app-atlas.log")]


def _tqdm_progress(log_path: Path) -> tuple[int, int] | None:
    """The last ``n/total`` a tqdm bar wrote into a step's log (the atlas build's progress)."""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            tail = f.read()
    except OSError:
        return None
    found = _TQDM.findall(tail)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def run_pipeline(spec: PipelineSpec, job: Job, on_event: Callable[[dict[str, Any]], None],
                 commands: Callable[[PipelineSpec], list[tuple[str, list[str], Path]]] = pipeline_commands) -> Path:
    """Fine-tune, export, build the atlas; ``on_event`` gets ``{"event": "app_phase", "phase": ...}`` and each
    training metrics record. Progress goes to ``job`` as thousandths of the whole pipeline.

    Returns:
        The atlas folder.
    Raises:
        Cancelled: stopped by the user (SIGTERM to the running step; what was finished is kept).
        TrainingError: a step failed (its log names why).
    """
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    tail = MetricsTail(spec.run_dir / "metrics.jsonl")
    total_steps: list[int] = []

    def report(phase: str, fraction: float, message: str) -> None:
        lo, hi = PHASE_SPAN.get(phase, (0.0, 1.0))
        job.report(int(1000 * (lo + (hi - lo) * min(max(fraction, 0.0), 1.0))), 1000, message)

    for phase, cmd, log_path in commands(spec):
        job.check()
        on_event({"event": "app_phase", "phase": phase})
        report(phase, 0.0, phase)

        def poll(phase: str = phase, log_path: Path = log_path) -> None:
            if phase == "training":
                for record in tail.read_new():
                    if record.get("event") == "start" and isinstance(record.get("total_steps"), int):
                        total_steps.append(record["total_steps"])
                    elif record.get("event") in ("step", "epoch") and isinstance(record.get("step"), int) \
                            and total_steps:
                        report(phase, record["step"] / max(total_steps[-1], 1),
                               f"training: step {record['step']} of {total_steps[-1]}")
                    on_event(record)
            elif phase == "building the atlas":
                seen = _tqdm_progress(log_path)
                if seen and seen[1]:
                    report(phase, seen[0] / seen[1], f"building the atlas: {seen[0]} of {seen[1]}")

        log_path.parent.mkdir(parents=True, exist_ok=True)
        run_process(cmd, log_path, job, poll, phase)  # a cancel sends SIGTERM to the running step
    report("building the atlas", 1.0, "done")
    return spec.atlas_dir


__all__ = ["Cancelled", "PipelineSpec", "ScanOutcome", "ScanRequest", "default_init_run",
           "engine_unavailable_reason", "imagery_outlines", "pipeline_commands", "run_pipeline", "scan"]
