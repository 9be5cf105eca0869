#!/usr/bin/env bash
# The GPU check of issue 13, goal 7, as one command for the device machine (README, "GPU check"):
# the CUDA tests (each compares the device with the CPU; none may skip on a GPU), then
# benchmarks/bench_gpu.py (timings and agreement at the issue's shapes). Logs go to $OUT when
# set. Extra arguments go to bench_gpu.py (e.g. --quick, --parts ridge).
#
#   bash benchmarks/gpu_check.sh [bench_gpu.py arguments]
#
# Wheels the machine lacks (rsatoolbox) travel in .whl/ and are installed to /tmp/site first.
# PYTHON picks the interpreter (default python3, the one holding torch there).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOGS=${OUT:-$(mktemp -d)}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || true
"$PY" -m pytest -m gpu -p no:cacheprovider -rs -q \
    tests/activations/test_fast.py tests/encoding/test_ridge_encoder.py \
    tests/rsa/test_bootstrap_kernels.py tests/models/test_dlib_resnet.py \
    2>&1 | tee "$LOGS/gpu_tests.log"
if grep -qE "[0-9]+ skipped" "$LOGS/gpu_tests.log"; then
    echo "gpu_check: GPU tests were skipped (no CUDA device?): nothing was checked" >&2
    exit 1
fi
"$PY" benchmarks/bench_gpu.py "$@" 2>&1 | tee "$LOGS/bench_gpu.log"
