#!/usr/bin/env python3
"""Time the full `cdk synth` the way a user runs it: one warm-up, then N timed runs; prints the median.

    .venv/bin/python scripts/time_synth.py [--runs 5] [--env dev]

Target: median <= 20 s on the 2-core reference machine. Writes to a temporary output directory so it
never disturbs cdk.out/.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 20.0


def synth_once(env_name: str, outdir: str) -> float:
    cmd = ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-c", f"env={env_name}",
           "--output", outdir]
    env = dict(os.environ, CDK_DISABLE_CLI_TELEMETRY="true")
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"cdk synth failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--env", default="dev")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="time-synth-") as outdir:
        warmup = synth_once(args.env, outdir)
        print(f"warm-up: {warmup:.1f} s")
        times = []
        for i in range(1, args.runs + 1):
            times.append(synth_once(args.env, outdir))
            print(f"run {i}: {times[-1]:.1f} s")
    median = statistics.median(times)
    verdict = "within" if median <= TARGET_SECONDS else "OVER"
    print(f"median of {len(times)} runs: {median:.1f} s ({verdict} the {TARGET_SECONDS:.0f} s target); "
          f"min {min(times):.1f} s, max {max(times):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
