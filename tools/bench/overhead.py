"""What does Ray Serve cost? The serving app against vLLM's own OpenAI server, same engine, same load.

    .venv-serving/bin/python -m tools.bench.overhead [--rounds 3] [--concurrency 16] [--output-tokens 64]
                                                     [--proxy haproxy|ray] [--json]

Starts both on the tiny local model (Ray Serve path on 127.0.0.1:18001, `vllm serve`'s server on
127.0.0.1:18002, identical engine settings), then alternates rounds of N concurrent streamed chat
completions against each, so drift on a shared machine hits both alike. Prints output tokens/s of
each, their ratio (target >= 0.90) and the TTFT p50 overhead (target <= 30 ms).

The load is the benchmark's own (tools/bench/runner.py `run_level`: closed-loop users streaming
through the openai SDK, TTFT at the first content chunk, output tokens from the endpoint's usage).
`measure(base_url, model, ...)` loads one endpoint; `compare(ray_url, vllm_url, model)` runs the
alternating rounds against two already-running endpoints; compare mode (`python -m tools.bench
--compare-base-url ...`) calls it after its sweeps (`overhead_check`, `print_overhead`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.bench.runner import ERROR_CODE, NUM_OUTPUT_TOKENS, TTFT, run_level
from tools.bench.workload import PreparedRequest, TokenCounter
from tools.endpoint import PLACEHOLDER_API_KEY, Endpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
RAY_PORT, VLLM_PORT = 18001, 18002
PROMPTS = [
    "Explain how a Kubernetes Service routes traffic to pods.",
    "Write a haiku about Inferentia2.",
    "What is the capital of France? Answer briefly.",
    "Summarise the benefits of continuous batching for LLM serving.",
]
REQUEST_TIMEOUT_S = 300.0  # one streamed chat
ROUND_TIMEOUT_S = 3600.0  # one round: far beyond any round of this size; the rounds are never cut short


@dataclass
class LoadResult:
    requests: int
    failed: int
    output_tokens: int
    wall_s: float
    output_tokens_per_s: float
    ttft_p50_ms: float
    ttft_p90_ms: float


def _v1(base_url: str) -> str:
    """The OpenAI base URL (…/v1) of a server given with or without it."""
    return base_url.rstrip("/").removesuffix("/v1") + "/v1"


async def _measure(base_url: str, model: str, concurrency: int, output_tokens: int, requests: int,
                   api_key: str | None) -> LoadResult:
    client = Endpoint(_v1(base_url), api_key or PLACEHOLDER_API_KEY, model).async_client(timeout=REQUEST_TIMEOUT_S)
    # Request i asks PROMPTS[i % 4], the last one first.
    prepared = [PreparedRequest(PROMPTS[i % len(PROMPTS)], output_tokens, None) for i in reversed(range(requests))]
    try:
        run = await run_level(client, model, prepared, concurrency, TokenCounter.usage_only(),
                              timeout_s=ROUND_TIMEOUT_S, sampling={"temperature": 0},
                              extra_body={"ignore_eos": True})
    finally:
        await client.close()
    done = [r for r in run.records if r[ERROR_CODE] is None]
    ttfts = sorted(r[TTFT] * 1000 for r in done) or [float("nan")]
    tokens = sum(r[NUM_OUTPUT_TOKENS] for r in done)
    wall = run.duration_s
    return LoadResult(
        requests=requests, failed=requests - len(done), output_tokens=tokens, wall_s=round(wall, 3),
        output_tokens_per_s=round(tokens / wall, 1),
        ttft_p50_ms=round(statistics.median(ttfts), 1),
        ttft_p90_ms=round(ttfts[min(len(ttfts) - 1, int(0.9 * len(ttfts)))], 1),
    )


def measure(base_url: str, model: str, *, concurrency: int = 16, output_tokens: int = 64,
            requests: int | None = None, api_key: str | None = None) -> LoadResult:
    """Run `requests` streamed chats (default 4 per stream) with `concurrency` in flight."""
    return asyncio.run(_measure(base_url, model, concurrency, output_tokens, requests or concurrency * 4, api_key))


def compare(ray_url: str, vllm_url: str, model: str, *, rounds: int = 3, concurrency: int = 16,
            output_tokens: int = 64, api_key: str | None = None) -> dict:
    """Alternate rounds against both endpoints; return per-round results and the median figures."""
    measure(ray_url, model, concurrency=concurrency, output_tokens=8, requests=concurrency, api_key=api_key)  # warm-up
    measure(vllm_url, model, concurrency=concurrency, output_tokens=8, requests=concurrency, api_key=api_key)
    ray_runs, vllm_runs = [], []
    for _ in range(rounds):
        vllm_runs.append(measure(vllm_url, model, concurrency=concurrency, output_tokens=output_tokens, api_key=api_key))
        ray_runs.append(measure(ray_url, model, concurrency=concurrency, output_tokens=output_tokens, api_key=api_key))
    ray_tps = statistics.median(r.output_tokens_per_s for r in ray_runs)
    vllm_tps = statistics.median(r.output_tokens_per_s for r in vllm_runs)
    ray_ttft = statistics.median(r.ttft_p50_ms for r in ray_runs)
    vllm_ttft = statistics.median(r.ttft_p50_ms for r in vllm_runs)
    return {
        "ray": [asdict(r) for r in ray_runs],
        "vllm": [asdict(r) for r in vllm_runs],
        "ray_tokens_per_s": ray_tps,
        "vllm_tokens_per_s": vllm_tps,
        "throughput_ratio": round(ray_tps / vllm_tps, 3),
        "ray_ttft_p50_ms": ray_ttft,
        "vllm_ttft_p50_ms": vllm_ttft,
        "ttft_p50_overhead_ms": round(ray_ttft - vllm_ttft, 1),
        "failed": sum(r.failed for r in ray_runs + vllm_runs),
    }


# --- compare mode's second opinion (python -m tools.bench --compare-base-url ...) ---------------------

def overhead_check(a_url: str, b_url: str, model: str, *, api_key: str | None, rounds: int, concurrency: int,
                   output_tokens: int) -> dict:
    """A is the endpoint under test (e.g. Ray Serve), B the reference (e.g. vLLM's own server).

    Returns compare()'s figures (throughput_ratio = A/B, ttft_p50_overhead_ms = A - B), or
    {"skipped": reason} when the check could not run to the end.
    """
    try:
        return compare(a_url, b_url, model, rounds=rounds, concurrency=concurrency, output_tokens=output_tokens,
                       api_key=api_key)
    except Exception as exc:  # the sweeps are done and written: report, do not lose them
        return {"skipped": f"the overhead check failed: {type(exc).__name__}: {exc}"}


def print_overhead(figures: dict, label_a: str, label_b: str, out) -> None:
    print(f"\nAlternating-round overhead check (tools/bench/overhead.py), A = {label_a}, B = {label_b}:", file=out)
    if "skipped" in figures:
        print(f"  skipped: {figures['skipped']}", file=out)
        return
    print(f"  output tokens/s  A {figures['ray_tokens_per_s']}  B {figures['vllm_tokens_per_s']}  "
          f"A/B {figures['throughput_ratio']}", file=out)
    print(f"  TTFT p50 (ms)    A {figures['ray_ttft_p50_ms']}  B {figures['vllm_ttft_p50_ms']}  "
          f"A-B {figures['ttft_p50_overhead_ms']}   failed requests: {figures['failed']}", file=out)


# --- starting the two servers (local tiny model; needs the serving venv) -------------------------------

def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def vllm_server_env(model: str, served_model_name: str, env: dict[str, str], known=None) -> dict[str, str]:
    """`env` with the engine's device environment applied (set, or unset for None), as the replica
    applies it before its engine starts: vLLM alone then runs the same engine."""
    from serving.settings import ServingSettings, local_cpu_args

    device_env = ServingSettings.from_args(local_cpu_args(model, served_model_name, known=known)).engine_options()["device_env"]
    out = dict(env)
    for name, value in device_env.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def vllm_server_command(model: str, port: int, served_model_name: str, known=None) -> list[str]:
    """`vllm serve` for the same engine options the Ray Serve app uses (from serving.settings), for
    the local model `known` (its row of config/models.py; None: the tiny model's)."""
    from serving.settings import ServingSettings, local_cpu_args

    options = ServingSettings.from_args(local_cpu_args(model, served_model_name, known=known)).engine_options()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--host", "127.0.0.1", "--port", str(port),
           "--disable-uvicorn-access-log"]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if key == "device_env" or value is None or value is False:
            continue
        if value is True:
            cmd.append(flag)
        elif isinstance(value, list):
            cmd += [flag, *map(str, value)]
        elif isinstance(value, dict):  # vLLM parses these flags as JSON (e.g. --override-generation-config)
            cmd += [flag, json.dumps(value)]
        else:
            cmd += [flag, str(value)]
    return cmd


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--proxy", choices=("haproxy", "ray"), default="haproxy")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    opts = parser.parse_args(argv)

    from config.models import TINY_LOCAL_MODEL
    from serving.local.serve import local_model, serve_env

    known, model = local_model(TINY_LOCAL_MODEL.served_name)
    served = known.served_name
    env = dict(os.environ, **serve_env(opts.proxy))
    env.pop("VLLM_API_KEY", None)
    logs = REPO_ROOT / ".cache"
    procs = []
    try:
        with open(logs / "bench-vllm.log", "w") as vlog, open(logs / "bench-ray.log", "w") as rlog:
            procs.append(subprocess.Popen(vllm_server_command(model, VLLM_PORT, served, known),
                                          env=vllm_server_env(model, served, env, known),
                                          stdout=vlog, stderr=subprocess.STDOUT, cwd=REPO_ROOT))
            procs.append(subprocess.Popen([sys.executable, "-m", "serving.local.serve", "--port", str(RAY_PORT),
                                           "--model", served, "--model-dir", model, "--proxy", opts.proxy,
                                           "--no-auth"], env=env,  # as `vllm serve` here: no key on either
                                          stdout=rlog, stderr=subprocess.STDOUT, cwd=REPO_ROOT))
            _wait_ready(f"http://127.0.0.1:{VLLM_PORT}", procs[0])
            _wait_ready(f"http://127.0.0.1:{RAY_PORT}", procs[1])
            result = compare(f"http://127.0.0.1:{RAY_PORT}", f"http://127.0.0.1:{VLLM_PORT}", served,
                             rounds=opts.rounds, concurrency=opts.concurrency, output_tokens=opts.output_tokens)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if opts.json:
        print(json.dumps(result, indent=2))
    print(f"load: {opts.concurrency} concurrent streams x {opts.output_tokens} output tokens, "
          f"{opts.rounds} alternating rounds, Ray Serve front: {opts.proxy}")
    print(f"vLLM OpenAI server : {result['vllm_tokens_per_s']:8.1f} output tok/s  TTFT p50 {result['vllm_ttft_p50_ms']:7.1f} ms")
    print(f"Ray Serve app      : {result['ray_tokens_per_s']:8.1f} output tok/s  TTFT p50 {result['ray_ttft_p50_ms']:7.1f} ms")
    print(f"throughput ratio   : {result['throughput_ratio']:.3f}  (target >= 0.90)")
    print(f"TTFT p50 overhead  : {result['ttft_p50_overhead_ms']:+.1f} ms  (target <= 30 ms)")
    print(f"failed requests    : {result['failed']}")


if __name__ == "__main__":
    main()
