#!/usr/bin/env bash
# The one GPU check, for a single CUDA machine: the GPU tests, then the throughput benchmark (compile modes
# incl. CUDA graphs, device log-mels, prepare, end to end). Everything goes to stdout and to
# docs/gpu/gpu_check.log (and to $OUT/gpu_check.log and $OUT/throughput.json when OUT is set).
# Needs python3 with torch, torchvision, Pillow, numpy, pytest (+ pytest-timeout), and soundfile + soxr for
# the engine's data layer (a bare CUDA image lacks them: carry their wheels in .whl/, installed below into
# /tmp/site). No .venv, Qt or app packages. About 5-7 minutes on an H100: tests <= 3.5 min (one torch.compile
# of the model pair, reused by the benchmark from the compile cache), benchmark <= 5 min; each part has a
# timeout so the whole script stays under 8.5 minutes.
#   bash bench/gpu_check.sh            (from the repository root, or anywhere)
#   SAMPLES=2048 STEPS=30 bash bench/gpu_check.sh   (smaller, if time is short)
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
SAMPLES=${SAMPLES:-3072}
STEPS=${STEPS:-40}
LOG=${OUT:+$OUT/gpu_check.log}
LOG=${LOG:-docs/gpu/gpu_check.log}
mkdir -p "$(dirname "$LOG")"

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -c "import torch, torchvision, PIL, numpy" 2>/dev/null; then
    echo "gpu_check: '$PY' cannot import torch, torchvision, Pillow and numpy; install them (or carry wheels" \
         "and put them on PYTHONPATH) and rerun. Nothing was run."
    exit 3
fi

# The engine's audio front-end needs soundfile and soxr (with cffi and pycparser); a bare CUDA image may
# lack them. Wheels carried in .whl/ (see the README's GPU section for the download command) are used.
if ! "$PY" -c "import soundfile, soxr" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
AUDIO_OK=1
"$PY" -c "import soundfile, soxr" 2>/dev/null || AUDIO_OK=0

{
echo "== gpu_check: $(date -u +%FT%TZ) on $(hostname); python: $PY; shared memory: $(df -h /dev/shm 2>/dev/null | awk 'NR==2 {print $2}')"
"$PY" - <<'EOF'
import os, sys, torch, torchvision, PIL, numpy
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"Pillow {PIL.__version__}, numpy {numpy.__version__}, cores {os.cpu_count()}")
if not torch.cuda.is_available():
    print("gpu_check: torch sees no CUDA device; the GPU tests will be skipped and the bench runs on CPU")
else:
    p = torch.cuda.get_device_properties(0)
    print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, CUDA {torch.version.cuda}")
EOF
if [ "$AUDIO_OK" = 0 ]; then
    echo "gpu_check: WARNING soundfile/soxr are missing for $PY (the engine's data layer imports them): the" \
         "prepare and end-to-end rows will fail and one GPU test is skipped. Carry their wheels in .whl/."
fi
if ! "$PY" -c "import pytest" 2>/dev/null; then
    echo "== GPU tests: skipped (pytest is not installed for $PY)"
else
    echo "== GPU tests (timeout ${TEST_TIMEOUT:-210} s)"
    timeout -k 10 ${TEST_TIMEOUT:-210} "$PY" -m pytest -q -p no:cacheprovider --noconftest -o addopts="" -o timeout=170 -m gpu -rs \
        tests/engine/test_gpu_cuda.py
    echo "== GPU tests exit status: $?"
fi
echo "== throughput benchmark (timeout ${BENCH_TIMEOUT:-300} s): $SAMPLES rows, $STEPS steps"
timeout -k 10 ${BENCH_TIMEOUT:-300} "$PY" bench/train_throughput.py --bf16 --compile --skip-raw --samples "$SAMPLES" --steps "$STEPS" \
    ${OUT:+--json "$OUT/throughput.json"}
echo "== benchmark exit status: $?"
} 2>&1 | tee "$LOG"
[ -n "${OUT:-}" ] && cp "$LOG" docs/gpu/gpu_check.log 2>/dev/null
exit 0
