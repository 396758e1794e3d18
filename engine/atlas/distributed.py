"""Building an atlas on a Dask cluster (``dask.distributed``; torch-free).

The client stays the atlas's one writer: it opens the sources, makes the overviews, and commits finished
parts in order exactly as a single-process build does (:mod:`engine.atlas.build`, whose resume logic is
reused unchanged). The workers do the expensive part: each task reads one part of a GeoTIFF's tile grid
(or 16 recordings) *itself*, thumbnails and embeds it with onnxruntime, and sends the result back. So:

- every worker must see the imagery, the recordings and the model bundle at the same paths as the client
  (a shared or identically mounted file system); a worker that cannot read one says so in one line;
- a part is computed by the same code on the same bytes wherever it runs, so the atlas is byte-identical
  to a single-process build (on CPU workers; the CUDA provider rounds differently);
- a task of a worker that dies is rerun on another worker (Dask reschedules it; ``retries`` covers
  exceptions); a part that keeps killing workers stops the build with one line, and the parts committed
  before it stay: the same command continues.

Workers choose their onnxruntime providers themselves: CUDA first when the worker has it, else the CPU.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, UserInputError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
TASK_RETRIES = 2
FIX_PATHS = "every worker needs the same files at the same paths as the client (a shared file system)"


def package_version() -> str:
    """The engine's version, compared between client and workers."""
    from engine import __version__

    return __version__


@dataclass(frozen=True)
class PartFailure:
    """A task's input problem, sent back as a value (not retried: it would fail again)."""

    message: str


# ----------------------------------------------------------------------------------- worker side

_WORKER_STATE: dict[Any, Any] = {}  # per worker process: encoders and opened sources, reused across tasks


def worker_providers() -> list[str]:
    """onnxruntime providers for this worker: CUDA first when this worker's onnxruntime has it."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []) + ["CPUExecutionProvider"]


def _here() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "this process"


def _task_threads() -> int:
    """onnxruntime threads for a task on this worker: its cores shared by the tasks it runs at once."""
    from engine.inference.encoders import default_threads

    try:
        from distributed import get_worker

        slots = int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        slots = 1
    return max(1, default_threads() // max(1, slots))


def _encoders(bundle_path: str, bundle_id: str, threads: int | None):
    from engine.bundle.format import load_bundle
    from engine.inference.encoders import BundleEncoders

    threads = threads or _task_threads()

    key = ("encoders", bundle_path, bundle_id, threads)
    if key not in _WORKER_STATE:
        bundle = load_bundle(bundle_path)
        if bundle.bundle_id != bundle_id:
            raise UserInputError(bundle_path, f"is bundle {bundle.short_id} on worker {_here()}, the client's is "
                                 f"{bundle_id[:12]}", "put the same bundle at the same path on every worker")
        _WORKER_STATE[key] = BundleEncoders(bundle, threads=threads, providers=worker_providers())
    return _WORKER_STATE[key]


def worker_identity(bundle_path: str) -> dict[str, Any]:
    """What a worker runs: our package version, the bundle it sees at ``bundle_path``, its providers."""
    from engine.bundle.format import load_bundle

    try:
        bundle_id = load_bundle(bundle_path).bundle_id
    except UserInputError as err:
        bundle_id = f"unreadable: {err}"
    try:
        providers = worker_providers()
    except ImportError:
        providers = []
    return {"version": package_version(), "bundle_id": bundle_id, "providers": providers}


def _source(spec: dict[str, Any]):
    from engine.atlas.imagery import ImagerySource, OccupiedCells, TileGrid, imagery_fingerprint

    key = ("source", spec["path"], spec["size"], spec["mtime_ns"])
    if key not in _WORKER_STATE:
        path = Path(spec["path"])
        if not path.is_file():
            raise UserInputError(path, f"not found on worker {_here()}", FIX_PATHS)
        seen = imagery_fingerprint(path)  # a VRT's members count too
        if (seen["size"], seen["mtime_ns"]) != (spec["size"], spec["mtime_ns"]):
            raise UserInputError(path, f"differs on worker {_here()} from the client's copy (size or time)",
                                 FIX_PATHS + " (copy with rsync -a to keep times)")
        src = ImagerySource(path, assume_crs=spec["assume_crs"], stretch=spec["stretch"])
        grid = TileGrid(spec["tile_px"][0], spec["tile_px"][1], spec["cols"], spec["rows"], *spec["ground_m"])
        # As in a single-process build: cells without a valid pixel are skipped from the mask.
        occupied = OccupiedCells(src, grid) if src.has_mask and spec["tiling"]["min_valid_fraction"] > 0 else None
        _WORKER_STATE[key] = (src, grid, occupied)
    return _WORKER_STATE[key]


def run_tile_part(spec: dict[str, Any], part: int) -> Any:
    """A task: tile and embed one part of a source (a :class:`TilePart`, or a :class:`PartFailure`)."""
    from engine.atlas.build import embed_tile_part
    from engine.atlas.imagery import gdal_env

    try:
        if spec["version"] != package_version():
            return PartFailure(f"worker {_here()} runs soundscape-mapper {package_version()}, the client "
                               f"{spec['version']}; install the same version on every worker")
        encoders = _encoders(spec["bundle_path"], spec["bundle_id"], spec["threads"])
        with gdal_env():
            src, grid, occupied = _source(spec)
            return embed_tile_part(src, grid, part, spec["part_tiles"], spec["tiling"], encoders, occupied=occupied)
    except UserInputError as err:
        return PartFailure(f"{err} (on worker {_here()})" if "worker" not in str(err) else str(err))


def run_recording_part(spec: dict[str, Any], records: Sequence[Any], table_index: int,
                       extras: Sequence[Any] | None = None) -> Any:
    """A task: embed up to 16 recordings (meta, embeddings, skipped), or a :class:`PartFailure`."""
    from engine.atlas.build import embed_recording_part

    try:
        if spec["version"] != package_version():
            return PartFailure(f"worker {_here()} runs soundscape-mapper {package_version()}, the client "
                               f"{spec['version']}; install the same version on every worker")
        encoders = _encoders(spec["bundle_path"], spec["bundle_id"], spec["threads"])
        with _blas_threads(spec.get("blas_threads")):
            meta, embeddings, skipped = embed_recording_part(records, table_index, encoders, extras=extras)
        return meta, embeddings, [f"{m} (on worker {_here()})" for m in skipped]
    except UserInputError as err:
        return PartFailure(str(err))


def blas_threads() -> int | None:
    """This process's BLAS threads (the audio front-end's matrix products round by them), if known."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return counts[0] if counts else None


@contextmanager
def _blas_threads(n: int | None) -> Iterator[None]:
    """Run with the client's BLAS thread count: Dask starts workers with one, and OpenBLAS's sums (in
    the log-mel front-end) depend on it, so this keeps recordings byte-identical to the client's build."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        n = None
    if n is None:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


# ----------------------------------------------------------------------------------- client side

class DaskRunner:
    """Computes a build's parts on a Dask cluster and hands them back in order (see the module docstring).

    Args:
        client: a connected ``distributed.Client``.
        bundle: the build's bundle (its path must be valid on the workers too).
        threads: onnxruntime threads per task (None: each worker's cores divided by its Dask threads).
        ahead: parts in flight at once (default: twice the workers' threads), which bounds the client's
            memory whatever the atlas size.
        tile_task/recording_task: the task functions (tests swap in one that crashes its worker).
    """

    def __init__(self, client: Any, bundle: Any, threads: int | None = None, ahead: int | None = None,
                 tile_task: Any = run_tile_part, recording_task: Any = run_recording_part) -> None:
        self.client, self.bundle, self.threads = client, bundle, threads
        n = sum(client.nthreads().values()) or 1
        self.ahead = ahead or max(2, 2 * n)
        self.tile_task, self.recording_task = tile_task, recording_task
        self.version = package_version()

    def check_workers(self) -> dict[str, dict[str, Any]]:
        """Every worker runs our version and sees our bundle; raises a one-line ConfigError otherwise."""
        try:
            identities = self.client.run(worker_identity, str(self.bundle.path))
        except Exception as err:  # noqa: BLE001 - e.g. a worker whose soundscape-mapper lacks this module
            raise ConfigError("--scheduler", f"a worker cannot run this build ({type(err).__name__}: {_short(err)})",
                              "install the same version of soundscape-mapper on every worker") from None
        for address, who in identities.items():
            if who["version"] != self.version:
                raise ConfigError("--scheduler", f"worker {address} runs soundscape-mapper {who['version']}, this "
                                  f"client {self.version}", "install the same version on every worker")
            if who["bundle_id"] != self.bundle.bundle_id:
                raise ConfigError("--scheduler", f"worker {address} does not see bundle {self.bundle.short_id} at "
                                  f"{self.bundle.path} ({who['bundle_id'][:60]})", FIX_PATHS)
        log.info("%d Dask worker(s): %s", len(identities),
                 ", ".join(f"{a} {w['providers'][:1]}" for a, w in identities.items()))
        return identities

    def _spec(self) -> dict[str, Any]:
        return {"version": self.version, "bundle_path": str(self.bundle.path), "bundle_id": self.bundle.bundle_id,
                "threads": self.threads, "blas_threads": blas_threads()}

    def _in_order(self, submit: Any, items: Sequence[Any], what: Any) -> Iterator[Any]:
        """Submit ``items`` a window at a time and yield their results in order."""
        from distributed import KilledWorker

        from engine.atlas.build import BuildStopped

        pending: deque = deque()
        queue = iter(enumerate(items))
        try:
            for _ in range(self.ahead):
                nxt = next(queue, None)
                if nxt is None:
                    break
                pending.append((nxt[1], submit(nxt[1])))
            while pending:
                item, future = pending.popleft()
                try:
                    result = future.result()
                except KilledWorker:
                    raise BuildStopped(what(item), "the workers running it died repeatedly (out of memory, or a "
                                     "crash in GDAL/onnxruntime?)", "check the workers' logs, then run the same "
                                     "command again (finished parts are kept)") from None
                except OSError as err:  # lost the scheduler
                    raise BuildStopped(what(item), f"the Dask cluster went away ({_short(err)})",
                                       "restart it and run the same command again (finished parts are kept)") from None
                except Exception as err:  # noqa: BLE001 - a task failed TASK_RETRIES + 1 times on the workers
                    raise BuildStopped(what(item), f"failed on the workers ({type(err).__name__}: {_short(err)})",
                                       "see the workers' logs, then run the same command again (finished parts "
                                       "are kept)") from None
                if isinstance(result, PartFailure):
                    raise UserInputError(None, result.message)
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append((nxt[1], submit(nxt[1])))
                yield result
        finally:
            for _, future in pending:  # cancelled, failed or interrupted: stop the work nobody will commit
                future.cancel()

    def tile_parts(self, entry: dict[str, Any], tiling: dict[str, Any], parts: Sequence[int]) -> Iterator[Any]:
        spec = {**self._spec(), "path": entry["path"], "size": entry["size"], "mtime_ns": entry["mtime_ns"],
                "assume_crs": entry.get("assume_crs"), "stretch": entry.get("stretch"), "tile_px": entry["tile_px"],
                "cols": entry["cols"], "rows": entry["rows"], "ground_m": entry["ground_m"],
                "part_tiles": int(entry["part_tiles"]), "tiling": dict(tiling)}
        # Sent with every task (a few hundred bytes), not scattered: scattered data dies with its worker.
        tag = f"{self.bundle.short_id}-{entry['index']}-{uuid.uuid4().hex[:12]}"  # new keys each run: an erred
        # key is remembered by the scheduler, and a rerun must compute the part again

        def submit(part: int) -> Any:
            return self.client.submit(self.tile_task, spec, part, key=f"atlas-tiles-{tag}-{part}",
                                      retries=TASK_RETRIES, pure=False)

        return self._in_order(submit, parts, lambda part: f"{entry['path']} (part {part})")

    def recording_parts(self, records: Sequence[Any], table_index: int, starts: Sequence[int],
                        extras: Sequence[Any] | None = None) -> Iterator[Any]:
        from engine.atlas.build import RECORDING_PART

        spec = self._spec()
        tag = f"{self.bundle.short_id}-{table_index}-{uuid.uuid4().hex[:12]}"

        def submit(start: int) -> Any:
            part_extras = list(extras[start:start + RECORDING_PART]) if extras else None
            return self.client.submit(self.recording_task, spec, list(records[start:start + RECORDING_PART]),
                                      table_index, part_extras, key=f"atlas-recordings-{tag}-{start}", retries=TASK_RETRIES,
                                      pure=False)

        return self._in_order(submit, starts, lambda start: f"recordings {start}-{start + RECORDING_PART - 1}")


def _short(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0][:160]


@contextmanager
def restored_environment() -> Iterator[None]:
    """Put ``os.environ`` back as it was: a local cluster's nannies set ``OMP_NUM_THREADS``,
    ``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` to 1 in *this* process's environment (for their
    workers) and leave them there, so processes started later (and their BLAS sums) would change."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(before):
            del os.environ[key]
        os.environ.update(before)


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None,
                connect_timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a local cluster of ``workers`` processes started
    (and closed) here. Raises a one-line ConfigError when dask is missing or the scheduler is unreachable."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--scheduler/--workers", "dask.distributed is not installed",
                          "pip install 'soundscape-mapper[scale]'") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{connect_timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise ConfigError("--scheduler", f"cannot reach the Dask scheduler at {scheduler} ({_short(err)})",
                              "start it (dask scheduler; dask worker ADDRESS) or fix the address, e.g. "
                              "tcp://HOST:8786") from None
        try:
            try:
                client.wait_for_workers(1, timeout=max(10.0, connect_timeout_s))
            except (TimeoutError, OSError):
                raise ConfigError("--scheduler", f"the Dask scheduler at {scheduler} has no workers",
                                  "start some: dask worker " + scheduler) from None
            yield client
        finally:
            client.close()
        return
    if workers is None or workers < 1:
        raise ConfigError("--workers", f"{workers!r} is not a number of workers", "give 1 or more")
    with restored_environment():
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.WARNING)
        try:
            client = Client(cluster, set_as_default=False)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()


def build_atlas_on_cluster(out: str | Path, bundle: Any, *, scheduler: str | None = None,
                           workers: int | None = None, threads: int | None = None,
                           connect_timeout_s: float = CONNECT_TIMEOUT_S, client: Any = None,
                           tile_task: Any = run_tile_part, **build_args: Any) -> Any:
    """:func:`engine.atlas.build.build_atlas` with its parts computed on a Dask cluster: the one at
    ``scheduler``, a given ``client``'s, or ``workers`` local processes. Same arguments and result."""
    from engine.atlas.build import _as_bundle, build_atlas
    from engine.inference.encoders import default_threads

    bundle = _as_bundle(bundle)
    if client is None:
        if scheduler is None and threads is None:  # local workers share this machine's cores
            threads = max(1, default_threads() // max(1, int(workers or 1)))
        with dask_client(scheduler, workers, connect_timeout_s) as own:
            return build_atlas_on_cluster(out, bundle, threads=threads, client=own, tile_task=tile_task,
                                          **build_args)
    runner = DaskRunner(client, bundle, threads=threads, tile_task=tile_task)
    runner.check_workers()
    return build_atlas(out, bundle, runner=runner, **build_args)

