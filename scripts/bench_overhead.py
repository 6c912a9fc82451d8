"""What does Ray Serve cost? The serving app against vLLM's own OpenAI server, same engine, same load.

    .venv-serving/bin/python scripts/bench_overhead.py [--rounds 3] [--concurrency 16] [--output-tokens 64]

Starts both on the tiny local model (Ray Serve path on 127.0.0.1:18001, `vllm serve`'s server on
127.0.0.1:18002, identical engine settings), then alternates rounds of N concurrent streamed chat
completions against each, so drift on a shared machine hits both alike. Prints output tokens/s of
each, their ratio (target >= 0.90) and the TTFT p50 overhead (target <= 30 ms).

Importable: `measure(base_url, model, ...)` loads one endpoint; `compare(ray_url, vllm_url, model)`
runs the alternating rounds against two already-running endpoints (tools/bench's compare mode).
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
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
RAY_PORT, VLLM_PORT = 18001, 18002
PROMPTS = [
    "Explain how a Kubernetes Service routes traffic to pods.",
    "Write a haiku about Inferentia2.",
    "What is the capital of France? Answer briefly.",
    "Summarise the benefits of continuous batching for LLM serving.",
]


@dataclass
class LoadResult:
    requests: int
    failed: int
    output_tokens: int
    wall_s: float
    output_tokens_per_s: float
    ttft_p50_ms: float
    ttft_p90_ms: float


async def _one_stream(client: httpx.AsyncClient, model: str, prompt: str, output_tokens: int) -> tuple[float, int]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": output_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    ttft = None
    tokens = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if ttft is None and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                ttft = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    if ttft is None:
        raise RuntimeError("stream ended without content")
    return ttft, tokens


async def _measure(base_url: str, model: str, concurrency: int, output_tokens: int, requests: int,
                   api_key: str | None) -> LoadResult:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=300) as client:
        queue = list(range(requests))
        results: list[tuple[float, int]] = []
        failures = 0

        async def worker() -> None:
            nonlocal failures
            while queue:
                i = queue.pop()
                try:
                    results.append(await _one_stream(client, model, PROMPTS[i % len(PROMPTS)], output_tokens))
                except (httpx.HTTPError, RuntimeError, ValueError):
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ttfts = sorted(r[0] * 1000 for r in results) or [float("nan")]
    tokens = sum(r[1] for r in results)
    return LoadResult(
        requests=requests, failed=failures, output_tokens=tokens, wall_s=round(wall, 3),
        output_tokens_per_s=round(tokens / wall, 1),
        ttft_p50_ms=round(statistics.median(ttfts), 1),
        ttft_p90_ms=round(ttfts[min(len(ttfts) - 1, int(0.9 * len(ttfts)))], 1),
    )


def measure(base_url: str, model: str, *, concurrency: int = 16, output_tokens: int = 64,
            requests: int | None = None, api_key: str | None = None) -> LoadResult:
    """Run `requests` streamed chats (default 4 per stream) with `concurrency` in flight."""
    return asyncio.run(_measure(base_url.rstrip("/").removesuffix("/v1"), model, concurrency, output_tokens,
                                requests or concurrency * 4, api_key))


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


# --- starting the two servers (local tiny model) ---------------------------------------------------

def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} was ready")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def vllm_server_command(model: str, port: int, served_model_name: str) -> list[str]:
    """`vllm serve` for the same engine options the Ray Serve app uses (from serving.settings)."""
    sys.path.insert(0, str(REPO_ROOT))
    from serving.settings import ServingSettings, local_cpu_args

    options = ServingSettings.from_args(local_cpu_args(model, served_model_name)).engine_options()
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
        else:
            cmd += [flag, str(value)]
    return cmd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--proxy", choices=("haproxy", "ray"), default="haproxy")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    opts = parser.parse_args()

    sys.path.insert(0, str(REPO_ROOT))
    from serving.local.serve import LOCAL_MODEL_NAME, serve_env
    from serving.local.tiny_model import build

    model = str(build())
    env = dict(os.environ, **serve_env(opts.proxy))
    env.pop("VLLM_API_KEY", None)
    logs = REPO_ROOT / ".cache"
    procs = []
    try:
        with open(logs / "bench-vllm.log", "w") as vlog, open(logs / "bench-ray.log", "w") as rlog:
            procs.append(subprocess.Popen(vllm_server_command(model, VLLM_PORT, LOCAL_MODEL_NAME), env=env,
                                          stdout=vlog, stderr=subprocess.STDOUT, cwd=REPO_ROOT))
            procs.append(subprocess.Popen([sys.executable, "-m", "serving.local.serve", "--port", str(RAY_PORT),
                                           "--model", model, "--proxy", opts.proxy], env=env,
                                          stdout=rlog, stderr=subprocess.STDOUT, cwd=REPO_ROOT))
            _wait_ready(f"http://127.0.0.1:{VLLM_PORT}", procs[0])
            _wait_ready(f"http://127.0.0.1:{RAY_PORT}", procs[1])
            result = compare(f"http://127.0.0.1:{RAY_PORT}", f"http://127.0.0.1:{VLLM_PORT}", LOCAL_MODEL_NAME,
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
