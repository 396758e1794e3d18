"""Settings and recent atlases, persisted as JSON in the user config folder (platformdirs).

A missing or damaged settings file never stops the app: it starts from defaults and says so in the log.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

log = logging.getLogger(__name__)

APP_NAME = "soundscape-mapper"
SETTINGS_FILE = "settings.json"
MAX_RECENT = 10


def config_dir() -> Path:
    """Where settings live (``~/.config/soundscape-mapper`` on Linux; XDG_CONFIG_HOME respected)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Where the demo world, demo atlas, training runs and trained bundles go."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass
class Settings:
    """What the app remembers between sessions."""

    last_atlas: str | None = None
    bundle: str | None = None  # the bundle last used with last_atlas
    recent_atlases: list[str] = field(default_factory=list)
    input_device: str | None = None  # a device name (indices change between sessions)
    record_max_seconds: float = 10.0
    train_data: str | None = None
    train_preset: str | None = None
    train_epochs: int = 5
    window_geometry: str | None = None  # base64 of QWidget.saveGeometry()
    export_folder: str | None = None  # where File > Export last wrote
    opened_bundles: list[str] = field(default_factory=list)  # models opened from elsewhere (the model list)
    coord_order: str = "latlon"  # "latlon" or "lonlat" (View > Coordinates)
    dialog_dirs: dict[str, str] = field(default_factory=dict)  # file dialog -> last folder
    playback_gain_db: float = 0.0
    playback_normalise: bool = False

    def remember_dialog_dir(self, dialog: str, chosen: str | Path) -> None:
        """Remember the folder of the file or folder just chosen in ``dialog``."""
        chosen = Path(chosen)
        self.dialog_dirs[dialog] = str(chosen if chosen.is_dir() else chosen.parent)

    def remember_bundle(self, bundle: str | Path) -> None:
        """Add an opened bundle to the model list (most recent first)."""
        bundle = str(Path(bundle).resolve())
        self.opened_bundles = [bundle] + [b for b in self.opened_bundles if b != bundle]
        del self.opened_bundles[MAX_RECENT:]

    def remember_atlas(self, atlas: str | Path, bundle: str | Path | None) -> None:
        """Make ``atlas`` the last one opened and move it to the front of the recent list."""
        atlas = str(Path(atlas).resolve())
        self.last_atlas = atlas
        self.bundle = str(Path(bundle).resolve()) if bundle is not None else self.bundle
        self.recent_atlases = [atlas] + [a for a in self.recent_atlases if a != atlas]
        del self.recent_atlases[MAX_RECENT:]

    def forget_atlas(self, atlas: str | Path) -> None:
        """Drop an atlas that could not be opened from the recent list (and as the last one)."""
        atlas = str(Path(atlas).resolve())
        self.recent_atlases = [a for a in self.recent_atlases if a != atlas]
        if self.last_atlas == atlas:
            self.last_atlas = None


def load_settings(folder: Path | None = None) -> Settings:
    """Read the settings file; defaults when it is absent or unreadable (never raises)."""
    path = (folder or config_dir()) / SETTINGS_FILE
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as err:
        log.warning("%s: unreadable settings (%s); starting from defaults", path, err)
        return Settings()
    if not isinstance(raw, dict):
        log.warning("%s: settings are not a JSON object; starting from defaults", path)
        return Settings()
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        value = raw.get(f.name, getattr(defaults, f.name))
        expected = type(getattr(defaults, f.name))
        # Keep a stored value only when its type fits, so a hand-edited file cannot break the app.
        if value is None or getattr(defaults, f.name) is None or isinstance(value, expected) or (
                expected is float and isinstance(value, int)):
            values[f.name] = value
    for name in ("recent_atlases", "opened_bundles"):
        if not all(isinstance(a, str) for a in values.get(name, [])):
            values[name] = []
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in values.get("dialog_dirs", {}).items()):
        values["dialog_dirs"] = {}
    return Settings(**values)


def save_settings(settings: Settings, folder: Path | None = None) -> Path:
    """Write the settings atomically (a temporary file, then a rename). Returns the file's path."""
    folder = folder or config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SETTINGS_FILE
    fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(settings), f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
