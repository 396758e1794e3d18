"""A stand-in for ``python -m pip`` in the engine-install tests: it answers pip's dry run with a report
and an install with pip's own kind of progress lines, without any network.

Behaviour is chosen by environment variables:
    FAKE_PIP_MODE: "ok" (default), "fail" (an ERROR line, exit status 1) or "hang" (sleeps until killed).
    FAKE_PIP_WHEELS: folder whose files the dry-run report lists (as file: URLs), one package each.
    FAKE_PIP_SITE: folder where a successful install writes the engine's modules (torch, torchvision, onnx).
    FAKE_PIP_PID: file where it writes its process id (so a test can check that Cancel ended it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if os.environ.get("FAKE_PIP_PID"):
        Path(os.environ["FAKE_PIP_PID"]).write_text(str(os.getpid()))
    mode = os.environ.get("FAKE_PIP_MODE", "ok")
    wheels = sorted(Path(os.environ.get("FAKE_PIP_WHEELS", ".")).glob("*.whl"))
    if "--dry-run" in argv:
        report = Path(argv[argv.index("--report") + 1])
        items = [{"metadata": {"name": w.name.split("-")[0], "version": w.name.split("-")[1]},
                  "download_info": {"url": w.resolve().as_uri(), "archive_info": {}}} for w in wheels]
        items.append({"metadata": {"name": "soundscape-mapper", "version": "0.1.0"},
                      "download_info": {"url": "file:///checkout", "dir_info": {"editable": True}}})
        report.write_text(json.dumps({"version": "1", "install": items}))
        return 0
    print(f"Collecting {argv[-1]}", flush=True)
    if mode == "hang":
        time.sleep(120)
        return 0
    if mode == "fail":
        print("ERROR: Could not find a version that satisfies the requirement torch==9.9", flush=True)
        return 1
    for wheel in wheels:
        print(f"  Downloading {wheel.name} ({wheel.stat().st_size / 1e3:.1f} kB)", flush=True)
    print("Installing collected packages: " + ", ".join(w.name.split("-")[0] for w in wheels), flush=True)
    site = os.environ.get("FAKE_PIP_SITE")
    if site:
        for module in ("torch", "torchvision", "onnx"):
            (Path(site) / module).mkdir(parents=True, exist_ok=True)
            (Path(site) / module / "__init__.py").write_text("")
    print("Successfully installed " + " ".join(w.name.split("-")[0] for w in wheels), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
