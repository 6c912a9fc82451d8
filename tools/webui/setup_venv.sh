#!/usr/bin/env bash
# Creates the Open WebUI venv (default .venv-webui) and installs what the browser test needs.
#  1. torch 2.13.0 CPU first: open-webui depends on torch, and without a CPU torch already in place
#     pip resolves it to a CUDA build of several GB.
#  2. open-webui pinned to the chart's image version (tools/webui/requirements.txt).
#  3. Debian's chromium for the headless browser test (never a browser download by a test tool).
set -euo pipefail
venv="${1:-.venv-webui}"
here="$(cd "$(dirname "$0")" && pwd)"

test -x "$venv/bin/python" || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q torch==2.13.0
# The constraint keeps torch at the CPU build while open-webui's dependencies resolve.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==2.13.0" >"$constraints"
"$venv/bin/pip" install -q -r "$here/requirements.txt" -c "$constraints"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation
  else
    echo "setup_venv.sh: Debian's chromium is missing; run: sudo apt-get install chromium" >&2
  fi
fi
