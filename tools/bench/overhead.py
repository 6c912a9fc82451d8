"""Compare mode's second opinion: the serving team's alternating-round overhead check.

scripts/bench_overhead.py `compare(ray_url, vllm_url, model)` alternates short rounds against both
endpoints so drift on a shared machine hits both alike (a sweep runs one endpoint after the other).
It runs in the serving venv (it uses httpx), so it is called there as a subprocess.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVING_PYTHON = ROOT / ".venv-serving" / "bin" / "python"

_CALL = """
import json, sys
from scripts.bench_overhead import compare
a, b, model, key, rounds, concurrency, tokens = sys.argv[1:8]
print(json.dumps(compare(a, b, model, rounds=int(rounds), concurrency=int(concurrency), output_tokens=int(tokens),
                         api_key=key or None)))
"""


def overhead_check(a_url: str, b_url: str, model: str, *, api_key: str | None, rounds: int, concurrency: int,
                   output_tokens: int, timeout_s: float = 1800) -> dict:
    """A is the endpoint under test (e.g. Ray Serve), B the reference (e.g. vLLM's own server).

    Returns the script's figures (throughput_ratio = A/B, ttft_p50_overhead_ms = A - B), or
    {"skipped": reason} when the serving venv is not set up on this machine.
    """
    if not SERVING_PYTHON.exists():
        return {"skipped": "needs the serving venv (make setup-serving)"}
    result = subprocess.run(
        [str(SERVING_PYTHON), "-c", _CALL, a_url, b_url, model, api_key or "", str(rounds), str(concurrency),
         str(output_tokens)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        return {"skipped": f"the overhead check failed: {result.stderr.strip().splitlines()[-1:]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_overhead(figures: dict, label_a: str, label_b: str, out) -> None:
    print(f"\nAlternating-round overhead check (scripts/bench_overhead.py), A = {label_a}, B = {label_b}:", file=out)
    if "skipped" in figures:
        print(f"  skipped: {figures['skipped']}", file=out)
        return
    print(f"  output tokens/s  A {figures['ray_tokens_per_s']}  B {figures['vllm_tokens_per_s']}  "
          f"A/B {figures['throughput_ratio']}", file=out)
    print(f"  TTFT p50 (ms)    A {figures['ray_ttft_p50_ms']}  B {figures['vllm_ttft_p50_ms']}  "
          f"A-B {figures['ttft_p50_overhead_ms']}   failed requests: {figures['failed']}", file=out)
