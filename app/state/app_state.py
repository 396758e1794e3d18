"""The app's state, split by concern. Each part owns its values and announces changes through
:class:`~app.state.observable.Event` objects; nothing here imports Qt or does heavy work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.state.engine_state import EngineState
from app.state.layer_state import LayerState
from app.state.observable import Event
from app.state.recording_state import RecordingSession
from app.state.training_state import TrainingState

if TYPE_CHECKING:
    from app.services.project import Project


@dataclass(frozen=True)
class Message:
    """A message for the user. ``level`` is "info", "warning" or "error"."""

    level: str
    text: str


class ProjectState:
    """What is loaded: the model bundle (with its onnxruntime encoders) and the atlas.

    ``current`` is the open :class:`~app.services.project.Project` (bundle and atlas built with it), the
    one copy controllers and widgets read; the fields beside it also hold a bundle opened without an atlas.
    """

    def __init__(self) -> None:
        self.changed = Event("project.changed")
        self.current: Project | None = None
        self.bundle: Any = None
        self.bundle_path: Path | None = None
        self.encoders: Any = None
        self.atlas: Any = None
        self.atlas_path: Path | None = None

    def set_bundle(self, bundle: Any, path: Path | None, encoders: Any) -> None:
        self.bundle, self.bundle_path, self.encoders = bundle, path, encoders
        self.changed.emit()

    def set_atlas(self, atlas: Any, path: Path | None) -> None:
        self.atlas, self.atlas_path = atlas, path
        self.changed.emit()

    def set_project(self, project: Project) -> None:
        """Replace bundle and atlas together (one notification, never a mismatched pair)."""
        self.current = project
        self.bundle, self.bundle_path, self.encoders = project.bundle, project.bundle_path, project.encoders
        self.atlas, self.atlas_path = project.atlas, project.atlas_path
        self.changed.emit()

    @property
    def ready(self) -> bool:
        return self.atlas is not None and self.encoders is not None


@dataclass(frozen=True)
class TileSelection:
    """A clicked tile and its predicted soundscape (engine ``RecordingMatch`` lists)."""

    index: int
    tile_id: int
    lon: float
    lat: float
    best: list[Any]
    nearest: list[Any]


class SelectionState:
    """The selected tile, and the recording whose spectrogram is shown."""

    def __init__(self) -> None:
        self.changed = Event("selection.changed")
        self.clip_changed = Event("selection.clip_changed")
        self.tile: TileSelection | None = None
        self.clip: Any = None  # the RecordingMatch whose spectrogram is shown
        self.clip_log_mel: np.ndarray | None = None  # its (n_mels, T) dB log-mel
        self.clip_seconds = 0.0
        self.hours: tuple[float, float] | None = None  # the Listen tab's local hour-of-day filter

    def set_tile(self, tile: TileSelection | None) -> None:
        self.tile = tile
        self.clip, self.clip_log_mel, self.clip_seconds = None, None, 0.0
        self.changed.emit(tile)

    def set_clip(self, clip: Any, log_mel_db: np.ndarray | None = None, seconds: float = 0.0) -> None:
        """Show ``clip``'s spectrogram (``log_mel_db`` None while it is being computed)."""
        self.clip, self.clip_log_mel, self.clip_seconds = clip, log_mel_db, seconds
        self.clip_changed.emit(clip)


@dataclass(frozen=True)
class SoundQueryResult:
    """A sound query: where it came from, its display spectrogram (dB) and the per-tile scores.

    Attributes:
        source: the file path, or "microphone".
        log_mel_db: (n_mels, T) log-mel in dB (not normalised) for display.
        seconds: clip length.
        scores: (N,) one similarity per atlas tile (higher is more alike).
        distances: (N,) embedding distances.
        top: the best tiles, engine ``TileMatch`` objects, best first.
        levels: the clip's :class:`~app.services.audio_check.AudioLevels` (peak, RMS, clipping ...).
    """

    source: str
    log_mel_db: np.ndarray
    seconds: float
    scores: np.ndarray
    distances: np.ndarray
    top: list[Any]
    levels: Any = None

    @property
    def searched(self) -> bool:
        """False for a clip no search was made with (a silent one): no scores, no matches."""
        return self.scores.size > 0

    @property
    def warnings(self) -> list[str]:
        return self.levels.warnings() if self.levels is not None else []


class QueryState:
    """The last sound query (file or microphone) and requests to centre the map."""

    def __init__(self) -> None:
        self.changed = Event("query.changed")
        self.centre_requested = Event("query.centre_requested")
        self.result: SoundQueryResult | None = None

    def set_result(self, result: SoundQueryResult | None) -> None:
        self.result = result
        self.changed.emit(result)

    def request_centre(self, lon: float, lat: float, tile_index: int | None = None) -> None:
        """Ask the map to centre on a place (e.g. a gallery thumbnail was clicked)."""
        self.centre_requested.emit(lon, lat, tile_index)


class AudioState:
    """Audio availability and activity: devices, the chosen input, recording and playback."""

    def __init__(self) -> None:
        self.changed = Event("audio.changed")
        self.playing_changed = Event("audio.playing_changed")
        self.input_available = False
        self.output_available = False
        self.reason = "audio not checked yet"  # why input/output is unavailable
        self.input_devices: list[Any] = []
        self.input_device: Any = None  # one of input_devices
        self.output_name = ""
        self.session: RecordingSession | None = None  # the recording while it runs
        self.playing: str | None = None  # path of the clip being played ("microphone" for the recording)
        self.position_changed = Event("audio.position_changed")
        self.position_s = 0.0  # the playhead, from the frames the output stream consumed
        self.duration_s = 0.0

    @property
    def recording(self) -> bool:
        return self.session is not None

    def set_devices(self, input_available: bool, output_available: bool, reason: str,
                    input_devices: list[Any], input_device: Any, output_name: str = "") -> None:
        self.input_available, self.output_available, self.reason = input_available, output_available, reason
        self.input_devices, self.input_device, self.output_name = input_devices, input_device, output_name
        self.changed.emit()

    def set_input_device(self, device: Any) -> None:
        self.input_device = device
        self.changed.emit()

    def set_session(self, session: RecordingSession | None) -> None:
        """A recording started (``session``) or ended (None)."""
        self.session = session
        self.changed.emit()

    def set_playing(self, path: str | None) -> None:
        self.playing = path
        if path is None:
            self.position_s = 0.0
        self.playing_changed.emit(path)

    def set_position(self, seconds: float, duration: float) -> None:
        """Where the playhead is in the clip playing."""
        self.position_s, self.duration_s = float(seconds), float(duration)
        self.position_changed.emit(self.position_s)


@dataclass
class TaskInfo:
    """A background job as the status bar shows it."""

    task_id: int
    name: str
    done: int = 0
    total: int | None = None
    message: str = ""
    cancellable: bool = True
    dialog: bool = False  # shown in a progress dialog (first-launch demo) rather than the status bar

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.done / self.total)


class TasksState:
    """Running background jobs (the worker module writes here; the status bar renders it)."""

    def __init__(self) -> None:
        self.changed = Event("tasks.changed")
        self.tasks: dict[int, TaskInfo] = {}

    def add(self, info: TaskInfo) -> None:
        self.tasks[info.task_id] = info
        self.changed.emit()

    def update(self, task_id: int, done: int, total: int | None, message: str) -> None:
        info = self.tasks.get(task_id)
        if info is None:
            return
        info.done, info.total, info.message = done, total, message or info.message
        self.changed.emit()

    def remove(self, task_id: int) -> None:
        if self.tasks.pop(task_id, None) is not None:
            self.changed.emit()

    @property
    def busy(self) -> bool:
        return bool(self.tasks)


class AppState:
    """Everything the window shows, one object passed down from ``main()``."""

    def __init__(self) -> None:
        self.project = ProjectState()
        self.selection = SelectionState()
        self.query = QueryState()
        self.audio = AudioState()
        self.tasks = TasksState()
        self.training = TrainingState()
        self.engine = EngineState()
        self.layers = LayerState()
        self.message = Event("app.message")
        self.last_message: Message | None = None

    def tell(self, level: str, text: str) -> None:
        """Show a message to the user (the status bar and, for errors, a banner)."""
        self.last_message = Message(level, text)
        self.message.emit(self.last_message)
