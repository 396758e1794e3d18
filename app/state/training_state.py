"""The training panel's state: the run's status and the curves read from its metrics.jsonl."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.state.observable import Event

# The phases a training job goes through, in order; the last three are final.
PHASES = ("idle", "starting", "training", "exporting", "reembedding", "finished", "cancelled", "failed")


@dataclass
class Curves:
    """Points of the live plots: training loss and retrieval recall against the global step."""

    loss_steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    recall_steps: list[int] = field(default_factory=list)
    r1_image_to_audio: list[float] = field(default_factory=list)
    r1_audio_to_image: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_r10_image_to_audio: list[float] = field(default_factory=list)
    val_r10_audio_to_image: list[float] = field(default_factory=list)


class TrainingState:
    """Status, progress and curves of the training job started from the panel."""

    def __init__(self) -> None:
        self.changed = Event("training.changed")
        self.points_added = Event("training.points_added")
        self.phase = "idle"
        self.message = ""
        self.run_dir: Path | None = None
        self.bundle_path: Path | None = None
        # After training: (new model, current model) as app.services.model_catalog.ModelInfo, offered to
        # the user; nothing switches until they accept.
        self.offer: tuple[Any, Any] | None = None
        self.epoch = 0
        self.epochs = 0
        self.step = 0
        self.total_steps = 0
        self.eta_s: float | None = None
        self.curves = Curves()

    @property
    def running(self) -> bool:
        return self.phase in ("starting", "training", "exporting", "reembedding")

    def reset(self, run_dir: Path | None) -> None:
        self.run_dir, self.bundle_path, self.offer = run_dir, None, None
        self.epoch = self.epochs = self.step = self.total_steps = 0
        self.eta_s, self.message = None, ""
        self.curves = Curves()
        self.set_phase("starting")

    def set_phase(self, phase: str, message: str = "") -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown training phase {phase!r}")
        self.phase, self.message = phase, message
        self.changed.emit()

    def set_offer(self, offer: tuple[Any, Any] | None, phase: str, message: str = "") -> None:
        """Offer a trained model beside the current one (None: the offer was answered)."""
        self.offer = offer
        self.set_phase(phase, message)

    def apply_event(self, event: dict[str, Any]) -> None:
        """Fold one metrics.jsonl record into the state (unknown events and keys are ignored)."""
        kind = event.get("event")
        c = self.curves
        if kind == "start":
            self.epochs = int(event.get("epochs") or 0)
            self.total_steps = int(event.get("total_steps") or 0)
            if self.phase == "starting":
                self.phase = "training"
        elif kind == "step":
            self.epoch = int(event.get("epoch", self.epoch))
            self.step = int(event.get("step", self.step))
            if _finite(event.get("loss")):
                c.loss_steps.append(self.step)
                c.loss.append(float(event["loss"]))
            i2a, a2i = event.get("r1_image_to_audio"), event.get("r1_audio_to_image")
            if _finite(i2a) and _finite(a2i):
                c.recall_steps.append(self.step)
                c.r1_image_to_audio.append(float(i2a))
                c.r1_audio_to_image.append(float(a2i))
            eta = event.get("eta_s")
            self.eta_s = float(eta) if _finite(eta) else self.eta_s
        elif kind == "epoch":
            self.epoch = int(event.get("epoch", self.epoch))
            self.step = int(event.get("step", self.step))
            val = event.get("val") or {}
            i2a = (val.get("image_to_audio") or {}).get("R@10")
            a2i = (val.get("audio_to_image") or {}).get("R@10")
            if _finite(i2a) and _finite(a2i):
                c.val_steps.append(self.step)
                c.val_r10_image_to_audio.append(float(i2a))
                c.val_r10_audio_to_image.append(float(a2i))
        elif kind == "end":
            self.message = str(event.get("message") or event.get("status") or "")
        else:
            return
        self.points_added.emit(event)
        self.changed.emit()


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value \
        and abs(value) != float("inf")
