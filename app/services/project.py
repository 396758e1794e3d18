"""Opening what the app works on: a model bundle (with its onnxruntime encoders) and an atlas built
with that bundle. An atlas built with another bundle is refused by ``engine.atlas.open_atlas``; here
the app looks for the bundle the atlas names among the ones it knows before giving up."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import AtlasError, BundleError

if TYPE_CHECKING:  # imported when a project is opened, not when the app starts
    from engine.atlas.format import Atlas
    from engine.bundle.format import Bundle
    from engine.inference.encoders import BundleEncoders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Project:
    """A bundle, its encoders and an atlas built with it."""

    bundle: Bundle
    bundle_path: Path
    encoders: BundleEncoders
    atlas: Atlas
    atlas_path: Path


DISTRIBUTION = "soundscape-mapper"
# Where a wheel installs resources/ (pyproject.toml's data-files), relative to the install prefix.
SHARED_RESOURCES = ("share", "soundscape-mapper", "resources")


def resources_dir() -> Path:
    """The ``resources/`` folder (demo model bundle, style sheet, icons).

    Returns:
        Inside a frozen app (PyInstaller), ``<bundle>/_internal/resources``; in a checkout (run from
        source or installed editable), the checkout's ``resources/``; in an installed wheel,
        ``<prefix>/share/soundscape-mapper/resources``. The last is looked up in the installed
        distribution's file list, so a venv, a ``--user`` and a ``--prefix`` install all work.
    """
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "resources").is_dir():
        return checkout / "resources"
    return installed_resources_dir() or checkout / "resources"


def installed_resources_dir(distribution: str = DISTRIBUTION) -> Path | None:
    """``resources/`` as a wheel installed it (``<prefix>/share/soundscape-mapper/resources``), or None
    when the distribution is not installed or installed without it (an editable install)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None
    n = len(SHARED_RESOURCES)
    for file in dist.files or ():
        parts = file.parts
        for i in range(len(parts) - n):
            if parts[i:i + n] == SHARED_RESOURCES:
                return Path(str(dist.locate_file("/".join(parts[:i + n])))).resolve()
    return None


def shipped_bundle_path() -> Path:
    """The demo model bundle that ships with the app."""
    return resources_dir() / "demo-bundle"


def load_model(path: str | Path) -> tuple[Bundle, BundleEncoders]:
    """Load and validate a bundle and wrap it in encoders (sessions start on first use).

    Returns:
        (Bundle, BundleEncoders).
    Raises:
        BundleError: missing, corrupt or unsupported bundle.
    """
    from engine.bundle.format import load_bundle
    from engine.inference.encoders import BundleEncoders

    bundle = load_bundle(path)
    return bundle, BundleEncoders(bundle)


def known_bundles(data_dir: Path, extra: Iterable[str | Path | None] = ()) -> list[Path]:
    """Bundles the app can offer for an atlas: the ones named, the shipped one, and trained ones."""
    seen: list[Path] = []
    candidates = [Path(p) for p in extra if p]
    candidates.append(shipped_bundle_path())
    bundles_dir = data_dir / "bundles"
    if bundles_dir.is_dir():
        candidates.extend(sorted(p for p in bundles_dir.iterdir() if p.is_dir()))
    for c in candidates:
        c = c.resolve()
        if c not in seen and (c / "manifest.json").is_file():
            seen.append(c)
    return seen


def warm_up(project: Project) -> None:
    """Start the audio model and the front-end once (onnxruntime session, mel filterbank), so the
    first sound query answers as fast as the next ones. Runs on a worker after an atlas opens."""
    import numpy as np

    from engine.audio import StreamingLogMel

    cfg = project.bundle.front_end
    StreamingLogMel(cfg)
    project.encoders.embed_log_mel(np.zeros((cfg.n_mels, cfg.chunk_frames), np.float32))


def open_project(atlas_path: str | Path, bundle_paths: Iterable[Path]) -> Project:
    """Open an atlas with the first of ``bundle_paths`` it was built with (then the bundle folder the
    atlas itself names, if it still exists).

    Args:
        atlas_path: the atlas folder.
        bundle_paths: candidate bundles, the preferred one first.

    Returns:
        The :class:`Project`.
    Raises:
        AtlasError: missing or corrupt atlas, or no known bundle matches it (the message says which
            bundle id it needs).
        BundleError: the matching bundle is damaged.
    """
    from engine.atlas import open_atlas
    from engine.bundle.format import load_bundle

    atlas_path = Path(atlas_path)
    atlas = open_atlas(atlas_path)
    wanted = atlas.bundle_id
    candidates = list(bundle_paths)
    recorded = (getattr(atlas, "manifest", None) or {}).get("bundle_path")
    if recorded:
        candidates.append(Path(recorded))
    errors: list[str] = []
    for candidate in candidates:
        try:
            bundle = load_bundle(candidate, verify_hashes=False)
        except BundleError as err:
            if Path(candidate).exists():
                errors.append(str(err))
            continue
        if bundle.bundle_id != wanted:
            continue
        bundle, encoders = load_model(candidate)  # now with the hash check
        return Project(bundle, Path(candidate), encoders, atlas, atlas_path)
    detail = f" ({'; '.join(errors)})" if errors else ""
    raise AtlasError(atlas_path, f"built with model bundle {str(wanted)[:12]}, which is not loaded{detail}",
                     "open that bundle with File > Open model bundle…, or re-embed the atlas with "
                     "'soundscape-engine atlas reembed'")
