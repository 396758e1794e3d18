#!/usr/bin/env bash
# `make package`: the desktop bundle in dist/soundscape (PyInstaller, one folder, no PyTorch), built in its
# own environment (.cache/package/venv: the app's dependencies and PyInstaller, never torch), then checked:
# no PyTorch inside, its size and what it is made of, and a smoke run of a copy with a clean environment
# (packaging/smoke_check.py). SMOKE=quick skips the smoke run's real first launch (about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.cache/package/venv
STAMP=$VENV/.installed
started=$(date +%s)

# binutils: PyInstaller reads libraries with objdump; the build strips and checks them with strip/readelf.
if ! command -v objdump >/dev/null || ! command -v strip >/dev/null || ! command -v readelf >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "package: installing binutils"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils >/dev/null
  else
    echo "package: binutils (objdump, strip, readelf) are needed; install them (Debian/Ubuntu: apt install binutils)" >&2
    exit 1
  fi
fi

# Re-installs only when pyproject.toml changes.
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[app,package]"
  touch "$STAMP"
fi
ready=$(date +%s)

"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
  packaging/soundscape.spec
"$VENV/bin/python" packaging/desktop_entry.py dist/soundscape
built=$(date +%s)

"$VENV/bin/python" packaging/check_bundle.py dist/soundscape
smoke_options=()
if [ "${SMOKE:-}" = "quick" ]; then smoke_options+=(--quick); fi
"$VENV/bin/python" packaging/smoke_check.py dist/soundscape "${smoke_options[@]}"
finished=$(date +%s)

echo "package: dist/soundscape ready; build environment $((ready - started)) s, bundle $((built - ready)) s," \
     "checks $((finished - built)) s, total $((finished - started)) s"
