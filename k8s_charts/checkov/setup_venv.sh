#!/usr/bin/env bash
# Create the checkov venv (default .venv-checkov) from the pinned k8s_charts/checkov/requirements.txt.
set -euo pipefail
venv="${1:-.venv-checkov}"
here="$(cd "$(dirname "$0")" && pwd)"
test -x "$venv/bin/python" || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -r "$here/requirements.txt" -c "$here/constraints.txt"
"$venv/bin/checkov" --version
