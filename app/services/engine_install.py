"""Installing the training engine (PyTorch and the ``engine`` extra) from the app, in the background.

`make run` and ``pip install soundscape-mapper[app]`` give the app without PyTorch (about 0.7 GB rather
than about 6 GB). Training needs the engine; this module says which pip command adds it to the running
interpreter's environment, how much it will download (pip's own dry run, then the size of each file),
runs it with its progress, and stops it on cancel. Nothing here imports torch or Qt: the app runs
training as a subprocess, so once pip is done a fresh look with ``importlib.util.find_spec`` (after
``importlib.invalidate_caches``) is all it takes to train without restarting.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from engine.errors import Cancelled, UserInputError
from engine.progress import Job

log = logging.getLogger(__name__)

DISTRIBUTION = "soundscape-mapper"
POLL_S = 0.1
STOP_GRACE_S = 5.0  # pip stops at once on SIGTERM; a hung one is killed after this
HEAD_TIMEOUT_S = 10.0
# "Downloading torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl (915.7 MB)", also "Using cached ..."
_SIZED_LINE = re.compile(r"^\s*(Downloading|Using cached)\s+(\S+)\s+\(([\d.]+)\s*(kB|MB|GB|B)\)")
_UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


class EngineInstallError(UserInputError):
    """pip could not install the engine (its last error line is in the message)."""


@dataclass(frozen=True)
class InstallPlan:
    """What installing the engine will do.

    Attributes:
        pip: the command that runs pip with the app's own interpreter (``[python, "-m", "pip"]``).
        target: what pip installs: ``-e <checkout>[engine]`` for a checkout, else the engine extra's
            requirements from the installed app's metadata.
    """

    pip: tuple[str, ...]
    target: tuple[str, ...]

    @property
    def command(self) -> list[str]:
        """The exact command that installs the engine."""
        return [*self.pip, "install", "--progress-bar", "off", *self.target]

    def dry_run_command(self, report: Path) -> list[str]:
        """pip's dry run, which resolves what would be installed and writes it as a JSON report."""
        return [*self.pip, "install", "--dry-run", "--quiet", "--report", str(report), *self.target]

    def display(self) -> str:
        """The command as a user would type it in a shell."""
        return " ".join(_quote(part) for part in self.command)


@dataclass(frozen=True)
class DownloadSize:
    """What pip's dry run says it will fetch: the packages to install and the bytes to download.

    ``total_bytes`` counts only files whose size could be found (``unknown`` counts the others).
    """

    packages: tuple[str, ...]
    total_bytes: int
    unknown: int = 0

    def describe(self) -> str:
        """'2.9 GB in 34 packages' (with 'at least' when some sizes are unknown)."""
        if not self.total_bytes and not self.unknown:
            return "nothing to download"
        prefix = "at least " if self.unknown else ""
        count = len(self.packages)
        return f"{prefix}{format_bytes(self.total_bytes)} in {count} package{'s' if count != 1 else ''}"


def format_bytes(n: float) -> str:
    """'915.7 MB', '2.9 GB', '12 kB' (decimal units, as pip prints them)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if unit != "kB" else f"{n / size:.0f} {unit}"
    return f"{int(n)} B"


def _quote(part: str) -> str:
    return f'"{part}"' if any(c in part for c in " []<>=!;~") else part


def install_plan(python: str | None = None, frozen: bool | None = None) -> InstallPlan | None:
    """How to add the engine to this installation, or None where pip cannot (the desktop bundle).

    A checkout (an editable install, or the source tree on the path) gets ``-e "<checkout>[engine]"``, as
    `make engine` does; an installed app gets the engine extra's requirements (:func:`engine_requirements`).
    """
    if getattr(sys, "frozen", False) if frozen is None else frozen:
        return None
    pip = (python or sys.executable, "-m", "pip")
    checkout = _checkout_dir()
    if checkout is not None:
        return InstallPlan(pip, ("-e", f"{checkout}[engine]"))
    requirements = engine_requirements()
    return InstallPlan(pip, tuple(requirements)) if requirements else None


def engine_requirements(distribution: str = DISTRIBUTION) -> list[str]:
    """The ``engine`` extra's requirements as the installed app's metadata lists them (``torch==2.11.0``,
    ...). An app installed from a wheel installs these rather than ``soundscape-mapper[engine]``, which
    would need the app itself on the package index."""
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return []
    found = []
    for line in requires:
        requirement, _, marker = line.partition(";")
        if re.search(r"extra\s*==\s*['\"]engine['\"]", marker):
            found.append(requirement.strip().replace(" ", ""))
    return found


def _checkout_dir() -> Path | None:
    """The source checkout the app runs from: the folder above the ``app`` package when it holds the
    project's pyproject.toml (an editable install or a checkout run in place), else pip's record of an
    editable install; None for an app installed from a wheel."""
    here = Path(__file__).resolve().parents[2]
    pyproject = here / "pyproject.toml"
    if pyproject.is_file() and f'name = "{DISTRIBUTION}"' in pyproject.read_text(encoding="utf-8"):
        return here
    try:
        direct_url = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
        info = json.loads(direct_url or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        return None
    url = str(info.get("url", ""))
    if (info.get("dir_info") or {}).get("editable") and url.startswith("file:"):
        return Path(unquote(urlparse(url).path))
    return None


def estimate_download(plan: InstallPlan, job: Job, size_of: Callable[[str], int | None] | None = None) -> DownloadSize:
    """Ask pip (a dry run: it resolves, downloads no wheel) what it would install, and sum the files' sizes.

    Raises:
        Cancelled: the job was cancelled.
        EngineInstallError: pip's dry run failed (no connection to the package index, for instance).
    """
    with tempfile.TemporaryDirectory(prefix="soundscape-engine-plan-") as tmp:
        report = Path(tmp) / "report.json"
        lines: list[str] = []
        run_pip(plan.dry_run_command(report), job, lines.append, what="pip's dry run")
        try:
            items = json.loads(report.read_text(encoding="utf-8")).get("install", [])
        except (OSError, ValueError) as err:
            raise EngineInstallError(report, f"pip's dry run wrote no readable report ({err})",
                                     "check that pip is 23.0 or newer") from err
    measure = size_of or file_size
    packages, total, unknown = [], 0, 0
    for item in items:
        meta = item.get("metadata") or {}
        packages.append(f"{meta.get('name', '?')} {meta.get('version', '')}".strip())
        url = (item.get("download_info") or {}).get("url", "")
        if (item.get("download_info") or {}).get("dir_info") is not None:
            continue  # the checkout itself: nothing to download
        job.check()
        size = measure(url) if url else None
        if size is None:
            unknown += 1
        else:
            total += size
    return DownloadSize(tuple(packages), total, unknown)


def file_size(url: str) -> int | None:
    """Bytes of a local file (file: URL) or of a download (an HTTP HEAD request); None when unknown."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        try:
            return Path(unquote(parsed.path)).stat().st_size
        except OSError:
            return None
    if parsed.scheme not in ("http", "https"):
        return None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=HEAD_TIMEOUT_S) as reply:
            length = reply.headers.get("Content-Length")
        return int(length) if length else None
    except (OSError, ValueError) as err:
        log.info("size of %s unknown: %s", url, err)
        return None


def sized_line(line: str) -> tuple[str, int] | None:
    """(file name, bytes) of pip's 'Downloading x.whl (12.3 MB)' or 'Using cached x.whl (...)' line."""
    match = _SIZED_LINE.match(line)
    if match is None:
        return None
    return match.group(2), int(float(match.group(3)) * _UNITS[match.group(4)])


def install_engine(plan: InstallPlan, job: Job, expected_bytes: int | None,
                   on_line: Callable[[str], None] | None = None) -> None:
    """Run the install; ``job`` gets (bytes fetched so far, expected bytes, pip's last line).

    Raises:
        Cancelled: the user cancelled (pip is stopped; what it finished installing stays).
        EngineInstallError: pip failed.
    """
    fetched = 0

    def line(text: str) -> None:
        nonlocal fetched
        sized = sized_line(text)
        if sized is not None:
            fetched += sized[1]
        if on_line is not None:
            on_line(text)
        total = expected_bytes if expected_bytes else None
        job.report(min(fetched, total) if total else fetched, total, text.strip()[:160])

    run_pip(plan.command, job, line, what="installing the engine")


def run_pip(cmd: list[str], job: Job, on_line: Callable[[str], None], what: str) -> None:
    """Run ``cmd``, handing each output line to ``on_line``; stop it when the job is cancelled.

    Raises:
        Cancelled: the job was cancelled (the process has exited).
        EngineInstallError: the process failed (its last error line is in the message).
    """
    log.info("running %s", " ".join(cmd))
    env = dict(os.environ, PYTHONUNBUFFERED="1", PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, text=True, errors="replace", bufsize=1)
    except OSError as err:
        raise EngineInstallError(cmd[0], f"{what} could not start ({err})", "check the Python installation") from err
    reader = _LineReader(proc)
    cancelled = False
    try:
        while proc.poll() is None or reader.alive():
            for text in reader.take():
                on_line(text)
            if job.cancelled and not cancelled and proc.poll() is None:
                cancelled = True
                log.info("cancel: stopping %s (pid %d)", what, proc.pid)
                _stop(proc)
            time.sleep(POLL_S)
        for text in reader.take():
            on_line(text)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join()
    if cancelled or job.cancelled:
        raise Cancelled()
    if proc.returncode != 0:
        detail = next((ln.strip() for ln in reversed(reader.seen) if ln.strip().startswith("ERROR")),
                      next((ln.strip() for ln in reversed(reader.seen) if ln.strip()), ""))
        raise EngineInstallError(cmd[0], f"{what} failed (exit status {proc.returncode}): {detail}",
                                 "check the network connection and the free disk space, then try again")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()


class _LineReader:
    """Reads a process's output on a thread, so the poll loop can notice a cancel while pip is silent."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.seen: list[str] = []
        self._new: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(proc,), name="pip-output", daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for text in proc.stdout:
            with self._lock:
                self._new.append(text.rstrip("\n"))
                self.seen.append(text.rstrip("\n"))
                del self.seen[:-200]
        proc.stdout.close()

    def take(self) -> list[str]:
        with self._lock:
            new, self._new = self._new, []
        return new

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        self._thread.join(timeout=5.0)


def engine_now_available(reason: Callable[[], str | None]) -> bool:
    """Whether the engine can be found now: the import system's directory caches are dropped first, so
    packages pip just added to site-packages are seen without restarting the app."""
    importlib.invalidate_caches()
    return reason() is None

