"""``downstream report``: results files -> Markdown tables in the paper's layout. Torch-free.

Rows are weights (the ``label`` each result was run with), values are percentages with two
decimals, as in the paper:

- Scene classification: rows ``label (arch)``, columns ``<dataset> <mode>`` (accuracy).
- DeepGlobe: rows ``label``, columns ``<arch> OA`` and ``<arch> mIoU`` (the paper's Table layout).
- ADVANCE: rows ``label (arch)``, columns Audio F1, Image F1, Audio + Image F1.

Several results for one cell (e.g. seeds) are averaged and shown as ``mean ± std (n)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine.errors import ConfigError

SCENE_ORDER = ("ucmerced", "resisc45", "aid")  # the paper's order
SCENE_TITLES = {"ucmerced": "UC Merced", "resisc45": "NWPU-RESISC45", "aid": "AID"}
MODE_TITLES = {"linear": "linear", "finetune": "fine-tune"}
ARCH_TITLES = {"resnet18": "ResNet-18", "resnet34": "ResNet-34", "resnet50": "ResNet-50"}
F1_KINDS = ("macro", "weighted")


def arch_title(weights: dict) -> str:
    """``ResNet-18``, or ``ResNet-18 w16`` for a slim width."""
    arch = str(weights.get("arch", "?"))
    title = ARCH_TITLES.get(arch, arch)
    width = weights.get("width", 64)
    return title if width in (64, None) else f"{title} w{width}"


def format_cell(values: list[float]) -> str:
    """Percent with two decimals; several values: ``mean ± std (n)``; none: an en dash."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "–"
    mean = 100 * float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {100 * float(np.std(values)):.2f} ({len(values)})"


class _Table:
    """Rows and columns in order of first appearance (columns re-sorted by ``column_order``)."""

    def __init__(self, title: str, corner: str) -> None:
        self.title, self.corner = title, corner
        self.cells: dict[tuple[str, tuple], list[float]] = {}
        self.rows: list[str] = []
        self.columns: dict[tuple, str] = {}
        self.notes: list[str] = []

    def add(self, row: str, column: tuple, header: str, value: float | None, note: str) -> None:
        if row not in self.rows:
            self.rows.append(row)
        self.columns.setdefault(column, header)
        self.cells.setdefault((row, column), []).append(value)
        if note not in self.notes:
            self.notes.append(note)

    def render(self) -> str:
        columns = sorted(self.columns)
        lines = [f"### {self.title}", "",
                 "| " + " | ".join([self.corner] + [self.columns[c] for c in columns]) + " |",
                 "|" + "---|" * (len(columns) + 1)]
        for row in self.rows:
            lines.append("| " + " | ".join([row] + [format_cell(self.cells.get((row, c), [])) for c in columns]) + " |")
        lines.append("")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def _split_note(result: dict) -> str:
    split, protocol = result["split"], result["protocol"]
    if protocol.get("split") == "alternate":
        how = "alternate (every other image) 50/50 split"
    else:
        frac = split.get("train_fraction", 0)
        how = f"split {round(100 * frac)}/{round(100 * (1 - frac))}, seed {split.get('seed')}"
    return how


def render_report(results: Sequence[dict], f1: str = "macro") -> str:
    """Markdown for the given results (already read with :func:`read_results`).

    Args:
        results: results dicts, in the order their rows should appear.
        f1: ``macro`` (default) or ``weighted`` F1 for ADVANCE (the authors' code reports weighted).

    Returns:
        The Markdown text, one table per task present.
    """
    if f1 not in F1_KINDS:
        raise ConfigError("--f1", f"unknown F1 {f1!r}", f"use one of {list(F1_KINDS)}")
    scene = _Table("Scene classification: accuracy (%)", "Weights")
    seg = _Table("DeepGlobe land cover: overall accuracy and mIoU (%)", "Weights")
    adv = _Table(f"ADVANCE audiovisual scene classification: {f1} F1 (%)", "Data used")
    for r in results:
        w, m, p = r["weights"], r["metrics"], r["protocol"]
        label, arch = str(w.get("label")), arch_title(w)
        if r["task"] == "classify":
            dataset, mode = r["dataset"], p.get("mode", "linear")
            order = (SCENE_ORDER.index(dataset) if dataset in SCENE_ORDER else 99, dataset, mode != "linear")
            header = f"{SCENE_TITLES.get(dataset, dataset)} {MODE_TITLES.get(mode, mode)}"
            note = (f"{header}: {_split_note(r)}, {split_sizes(r)}, {p.get('image_size')} px"
                    + (f", {p.get('epochs')} epochs, lr {p.get('lr')}" if mode == "finetune" else ""))
            scene.add(f"{label} ({arch})", order, header, m.get("accuracy"), note)
        elif r["task"] == "segment":
            order = (arch, 0)
            note = (f"DeepGlobe: {p.get('head')} (output stride {p.get('output_stride')}), {_split_note(r)} of the "
                    f"labelled scenes, {split_sizes(r, 'scenes')}, {p.get('epochs')} epochs of "
                    f"{p.get('crops_per_image')} crops of {p.get('crop')} px per scene; unknown pixels ignored")
            seg.add(label, (arch, 0), f"{arch} OA", m.get("overall_accuracy"), note)
            seg.add(label, (arch, 1), f"{arch} mIoU", m.get("mean_iou"), note)
        elif r["task"] == "advance":
            note = (f"ADVANCE: logistic regression on frozen {p.get('features')}s, {_split_note(r)}, "
                    f"{split_sizes(r, 'pairs')}, mean over {p.get('repeats')} re-drawn splits")
            key = "macro_f1" if f1 == "macro" else "weighted_f1"
            for i, (modality, header) in enumerate((("audio", "Audio F1"), ("image", "Image F1"),
                                                    ("both", "Audio + Image F1"))):
                adv.add(f"{label} ({arch})", (i,), header, m.get(modality, {}).get(key), note)
    parts = [t.render() for t in (scene, seg, adv) if t.rows]
    return "\n".join(parts)


def split_sizes(result: dict, unit: str = "images") -> str:
    split = result["split"]
    return f"{split.get('train')} train / {split.get('test')} test {unit}"
