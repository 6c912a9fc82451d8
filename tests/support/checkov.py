"""Run the pinned checkov (`make setup-checkov`) on a directory, one framework, and return its JSON report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


def run_checkov(directory: Path, framework: str, *, quiet: bool = True) -> dict:
    """`quiet` drops the passed checks from the report; without it they show every file was scanned."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make setup-checkov` (k8s_charts/checkov/setup_venv.sh)")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "ERROR"}
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", framework, *(["--quiet"] if quiet else []),
         "-o", "json", "--skip-download"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.stdout.strip(), f"checkov printed nothing (rc={proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report
