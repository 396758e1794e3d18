"""The engine's atlas work the app starts in the background: re-embedding an atlas with another model,
building the demo atlas, adding imagery, counting the tiles on disk. Controllers call these from their
worker closures rather than reaching into ``engine.atlas`` themselves. Qt-free; each takes the job for
progress and cancel."""

from __future__ import annotations

from pathlib import Path

from app.services import demo
from app.services.project import Project
from engine.errors import UserInputError
from engine.progress import Job


def reembed(atlas_path: Path, bundle_path: Path, job: Job) -> Path:
    """Re-embed the atlas at ``atlas_path`` with the bundle at ``bundle_path`` (resumable).

    Returns:
        The atlas folder.
    """
    from engine.atlas import reembed_atlas
    from engine.bundle.format import load_bundle

    reembed_atlas(atlas_path, load_bundle(bundle_path), job=job)
    return atlas_path


def build_demo_atlas(paths: demo.DemoPaths, bundle_path: Path, job: Job) -> Path:
    """Build, finish or check the demo atlas with the bundle at ``bundle_path``. Returns its folder."""
    from engine.bundle.format import load_bundle

    return demo.build_demo_atlas(paths, load_bundle(bundle_path), job)


def add_imagery(project: Project, image: Path, job: Job, atlas_path: Path | None = None) -> Path:
    """Tile and embed a GeoTIFF into the project's atlas, or into ``atlas_path`` (a copy of it; resumable).
    Returns the atlas folder."""
    from engine.atlas import add_imagery as add

    target = atlas_path or project.atlas_path
    add(target, project.bundle, image, job=job)
    return target


def tile_count(atlas_path: Path) -> int:
    """Tiles on disk now (-1 if the atlas cannot be read)."""
    from engine.atlas import open_atlas

    try:
        return len(open_atlas(atlas_path).tiles.ids)
    except UserInputError:
        return -1
