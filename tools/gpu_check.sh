#!/usr/bin/env bash
# make gpu-check: everything worth checking on a GPU, in one call (a few minutes on one
# modern GPU). 1. the unit tests with LECTURE_DEVICE=cuda, 2. the benchmarks, which also
# execute every notebook on the GPU, adding CUDA sections to benchmarks/RESULTS.md.
# The integration tests that never touch the GPU (grading, browser, lecture build) are left
# to `make test`. PY picks the interpreter (default .venv/bin/python); every step runs even
# if an earlier one fails, and the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export LECTURE_DEVICE=${LECTURE_DEVICE:-cuda} PYTHONUNBUFFERED=1

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu-check: $PY sees no CUDA GPU (torch.cuda.is_available() is False); nothing to check." >&2
    exit 2
fi
"$PY" -c "import torch; print('gpu-check on', torch.cuda.get_device_name(0), '| torch', torch.__version__)"

status=0
run() {  # run NAME COMMAND...: time one step, remember a failure, go on
    local name=$1 start=$SECONDS
    shift
    echo "=== $name"
    if "$@"; then echo "=== $name: passed in $((SECONDS - start)) s"
    else status=1; echo "=== $name: FAILED after $((SECONDS - start)) s"; fi
}

run "unit tests on $LECTURE_DEVICE" "$PY" -m pytest tests -q -o addopts="-ra" -p no:cacheprovider \
    --ignore=tests/test_browser.py --ignore=tests/test_grading.py --ignore=tests/test_grading_attacks.py \
    --ignore=tests/test_exercises.py --ignore=tests/test_lecture_build.py
run "benchmarks and notebooks on $LECTURE_DEVICE" "$PY" -m benchmarks loops attribution quality notebooks grading
if [ -n "${OUT:-}" ]; then cp benchmarks/RESULTS.md "$OUT/" 2>/dev/null || true; fi
echo "gpu-check: $([ $status = 0 ] && echo 'all passed' || echo 'FAILURES above') in $SECONDS s"
exit $status
