"""Plain-Python observable state of the app (no Qt): widgets render it, actions write it."""

from app.state.app_state import (
    AppState,
    AudioState,
    Message,
    ProjectState,
    QueryState,
    SelectionState,
    SoundQueryResult,
    TaskInfo,
    TasksState,
    TileSelection,
)
from app.state.engine_state import EngineState
from app.state.observable import Event
from app.state.recording_state import RecordingSession
from app.state.training_state import TrainingState

__all__ = [
    "AppState", "AudioState", "EngineState", "Event", "Message", "ProjectState", "QueryState", "RecordingSession", "SelectionState",
    "SoundQueryResult", "TaskInfo", "TasksState", "TileSelection", "TrainingState",
]
