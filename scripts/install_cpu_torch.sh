#!/usr/bin/env bash
# Install torch 2.13.0, CPU build, into an existing venv -- never a CUDA build.
# Usage: bash scripts/install_cpu_torch.sh VENV
#
# Where it comes from, first that works:
#   1. a wheel pip finds without an index (`--no-index --no-deps`: its find-links / local wheel
#      directories, as pip's config on the project's own machines points at a local CPU wheel), so
#      such a machine never fetches torch itself; its small pure-Python dependencies (filelock, sympy,
#      ...) then come from the configured index (PyPI), torch already being satisfied;
#   2. Linux: the PyTorch CPU index (PyPI's Linux torch is the CUDA build, several GB of CUDA libraries);
#   3. macOS: PyPI (PyTorch's macOS wheels have no CUDA);
#   anything else: an error saying so.
# Afterwards torch must import and report torch.version.cuda None; otherwise this fails, naming the build.
# TORCH_CPU_INDEX_URL overrides the index of step 2 (a mirror). uname and pip are looked up normally,
# so a test can put stand-ins first on PATH / in the venv.
set -euo pipefail
venv="${1:?usage: install_cpu_torch.sh VENV (an existing virtualenv)}"
TORCH_VERSION="2.13.0"
index="${TORCH_CPU_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
pip="$venv/bin/pip"
python="$venv/bin/python"
if [ ! -x "$pip" ] || [ ! -x "$python" ]; then
  echo "install_cpu_torch.sh: $venv is not a virtualenv (no bin/pip, bin/python); create it with python3 -m venv $venv" >&2
  exit 2
fi

if "$pip" install -q --no-index --no-deps "torch==$TORCH_VERSION" 2>/dev/null; then
  echo "install_cpu_torch.sh: torch $TORCH_VERSION from a local wheel (pip --no-index)"
  "$pip" install -q "torch==$TORCH_VERSION"  # its dependencies only: torch itself is satisfied
else
  os="$(uname -s)"
  case "$os" in
    Linux)
      echo "install_cpu_torch.sh: torch $TORCH_VERSION CPU from the PyTorch CPU index ($index)"
      "$pip" install -q --index-url "$index" "torch==$TORCH_VERSION"
      ;;
    Darwin)
      echo "install_cpu_torch.sh: torch $TORCH_VERSION from PyPI (macOS wheels are CPU-only)"
      "$pip" install -q "torch==$TORCH_VERSION"
      ;;
    *)
      echo "install_cpu_torch.sh: no CPU torch $TORCH_VERSION source known for $os; use Linux or macOS" >&2
      exit 1
      ;;
  esac
fi

# The check that matters: whatever pip chose, it must be a CPU build. (Only the marked stdout line is
# read: torch may print warnings, e.g. about a missing numpy.)
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT
if ! report="$("$python" -c 'import torch; print("TORCH-BUILD", torch.__version__, torch.version.cuda)' 2>"$errors")"; then
  echo "install_cpu_torch.sh: torch does not import in $venv: $(tail -n 1 "$errors")" >&2
  exit 1
fi
set -- $(printf '%s\n' "$report" | awk '$1 == "TORCH-BUILD" {print $2, $3}')
if [ "$#" -ne 2 ]; then
  echo "install_cpu_torch.sh: could not read torch's build from $venv: $report" >&2
  exit 1
fi
if [ "$2" != "None" ]; then
  echo "install_cpu_torch.sh: $venv has torch $1 built for CUDA $2, not the CPU build; remove it" \
       "($pip uninstall -y torch) and run this script again" >&2
  exit 1
fi
echo "install_cpu_torch.sh: torch $1 (CPU, no CUDA) in $venv"
