"""Re-embedding an atlas with another bundle (after training): every tile is read again from its
GeoTIFF at the new bundle's input size and every recording embedded again, into a new embedding
generation beside the current one; the atlas switches in one manifest write at the end. Resumable and
torch-free like a build."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.atlas.build import RECORDING_PART, BuildReport, _as_bundle, _fingerprint, _model_input, _Progress
from engine.atlas.format import open_atlas
from engine.atlas.imagery import ImagerySource, TileGrid, gdal_env
from engine.atlas.writer import AtlasWriter
from engine.bundle.format import Bundle
from engine.errors import AtlasError, UserInputError
from engine.inference.encoders import BundleEncoders
from engine.progress import Job

log = logging.getLogger(__name__)


def reembed_atlas(atlas_path: str | Path, bundle: Bundle | str | Path, job: Job | None = None,
                  threads: int | None = None) -> BuildReport:
    """Embed every tile and recording of an atlas again with another bundle (e.g. after training).

    Tiles are re-read from their GeoTIFFs at the new bundle's input size; the atlas keeps working with
    the old bundle until the last part is done, then switches in one step. Resumable like a build.
    A recording that can no longer be read gets a NaN embedding (queries never match it).

    Raises:
        AtlasError: an imagery file is missing or changed; ImageFileError: it cannot be read.
    """
    bundle = _as_bundle(bundle)
    job = job or Job()
    report = BuildReport(atlas=Path(atlas_path))
    encoders = BundleEncoders(bundle, threads=threads)
    with gdal_env(), AtlasWriter(atlas_path, bundle, create=False) as writer:
        m = writer.manifest
        if m["bundle_id"] == bundle.bundle_id and not m.get("reembed"):
            return report
        pending = writer.begin_reembed()
        atlas = open_atlas(atlas_path)
        n, n_rec = len(atlas.tiles), len(atlas.recordings)
        # Copies, so no memory map of the old generation is open when finish_reembed deletes it.
        tile_source, tile_grid = np.array(atlas.tiles.source), np.array(atlas.tiles.grid)
        recording_paths = list(atlas.recordings.paths)
        atlas.close()
        del atlas
        progress = _Progress(job, n + n_rec, pending["tiles_done"] + pending["recordings_done"])
        size = bundle.image_size
        read_size = max(size, int(m["tiling"]["thumbnail_px"]))
        opened: dict[int, tuple[ImagerySource, TileGrid]] = {}
        try:
            for start in range(pending["tiles_done"], n, int(m["tiling"]["part_tiles"])):
                stop = min(start + int(m["tiling"]["part_tiles"]), n)
                images = []
                for i in range(start, stop):
                    job.check()
                    s = int(tile_source[i])
                    if s not in opened:
                        entry = m["sources"][s]
                        path = Path(entry["path"])
                        if not path.is_file() or _fingerprint(path) != {"size": entry["size"],
                                                                        "mtime_ns": entry["mtime_ns"]}:
                            raise AtlasError(path, "imagery of this atlas is missing or changed",
                                             "put the original file back, or build a new atlas")
                        grid = TileGrid(entry["tile_px"][0], entry["tile_px"][1], entry["cols"], entry["rows"],
                                        *entry["ground_m"])
                        opened[s] = (ImagerySource(path, entry.get("assume_crs"), entry.get("stretch")), grid)
                    src, grid = opened[s]
                    col, row = (int(v) for v in tile_grid[i])
                    images.append(_model_input(src.read_tile(grid, col, row, read_size)[0], size))
                    progress.advance(1, "tiles")
                writer.append_reembedded(tile_embeddings=encoders.embed_images(np.stack(images)))
                writer.commit()
            for start in range(pending["recordings_done"], n_rec, RECORDING_PART):
                embeddings = []
                for path in recording_paths[start:start + RECORDING_PART]:
                    job.check()
                    try:
                        embeddings.append(encoders.embed_audio_file(path))
                    except UserInputError as err:
                        report.skip(str(err))
                        embeddings.append(np.full(bundle.embedding_dim, np.nan, np.float32))
                    progress.advance(1, "recordings")
                writer.append_reembedded(recording_embeddings=np.array(embeddings, np.float32))
                writer.commit()
        finally:
            for src, _ in opened.values():
                src.close()
        writer.finish_reembed()
    from engine.atlas.ann import update_search_index

    update_search_index(atlas_path)  # the new generation's index, from scratch; the old one is removed
    report.tiles_added, report.recordings_added = 0, 0
    log.info("re-embedded %d tiles and %d recordings with bundle %s", n, n_rec, bundle.short_id)
    return report


