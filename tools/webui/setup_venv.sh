#!/usr/bin/env bash
# Creates the Open WebUI venv (default .venv-webui) and installs what the browser test needs.
#  1. torch 2.13.0 CPU first (scripts/install_cpu_torch.sh: a local wheel, else the PyTorch CPU index on
#     Linux, PyPI on macOS; never CUDA): open-webui depends on torch, and without a CPU torch already
#     in place pip resolves it to a CUDA build of several GB.
#  2. open-webui pinned to the chart's image version (tools/webui/requirements.txt).
#  3. a Chromium for the headless browser test (tools/webui/install_browser.sh: Debian's package where
#     apt has a real one, else Playwright's own). A missing browser is reported, not fatal here: the
#     browser test fails with the command that installs it.
set -euo pipefail
venv="${1:-.venv-webui}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

test -x "$venv/bin/python" || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
bash "$root/scripts/install_cpu_torch.sh" "$venv"
# The constraint keeps torch at the CPU build while open-webui's dependencies resolve.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==2.13.0" >"$constraints"
"$venv/bin/pip" install -q -r "$here/requirements.txt" -c "$constraints"

# Playwright (and so the browser build it needs) lives in the CDK app's venv, where pytest runs.
bash "$here/install_browser.sh" "${PLAYWRIGHT_PYTHON:-$root/.venv/bin/python}" || \
  echo "setup_venv.sh: no Chromium for the browser test yet (see the line above)" >&2
