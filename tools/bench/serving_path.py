"""The serving path against vLLM alone, measured with vLLM's own benchmark client (issue 12's method).

    .venv-serving/bin/python -m tools.bench.serving_path [--model tiny-llama3|smollm2-135m-instruct] [--starts 3]
                                                         [--input-len 512] [--output-len 128]
                                                         [--concurrency 16] [--prompts 64] [--json]

For each of `--starts` fresh starts, alternating: start ONE server (vLLM's own OpenAI server, then the
Ray Serve app of local mode, same engine options from serving/settings.py), run `vllm.benchmarks.serve`
once as a warm-up (discarded) and once measured (random dataset, --ignore-eos), stop it. Only one
server is alive at a time, so neither steals the other's cores. Prints output tokens/s and TTFT p50
of every measured run, the medians, the throughput ratio (target >= 0.95) and the TTFT p50 overhead
(target <= +20 ms).

Measured here (2 cores, tiny model, 3 starts each) before the OMP_NUM_THREADS fix in
serving/settings.py: ratio 0.56; the figures after it are in docs/serving.md ("Serving path against vLLM alone").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from config.models import TINY_LOCAL_MODEL
from serving.local.serve import LOCAL_MODELS
from tools.bench.overhead import _wait_ready, vllm_server_command, vllm_server_env

REPO_ROOT = Path(__file__).resolve().parents[2]
PORT = 18011
TARGET_RATIO = 0.95
TARGET_TTFT_OVERHEAD_MS = 20.0


def _server(kind: str, model: str, known, env: dict[str, str], log) -> subprocess.Popen:
    if kind == "vllm":
        cmd = vllm_server_command(model, PORT, known.served_name, known)
        env = vllm_server_env(model, known.served_name, env, known)
    else:
        cmd = [sys.executable, "-m", "serving.local.serve", "--port", str(PORT), "--model", known.served_name,
               "--model-dir", model, "--no-auth"]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_once(model: str, served_name: str, opts: argparse.Namespace, prompts: int) -> dict:
    """One run of vLLM's benchmark client (vllm/benchmarks/serve.py) against the server on PORT."""
    from vllm.benchmarks.serve import add_cli_args, main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    args = parser.parse_args([
        "--backend", "openai-chat", "--endpoint", "/v1/chat/completions",
        "--base-url", f"http://127.0.0.1:{PORT}", "--model", served_name, "--tokenizer", model,
        "--dataset-name", "random", "--random-input-len", str(opts.input_len),
        "--random-output-len", str(opts.output_len), "--num-prompts", str(prompts),
        "--max-concurrency", str(opts.concurrency), "--ignore-eos", "--disable-tqdm",
    ])
    result = main(args)
    return {"output_tokens_per_s": round(float(result["output_throughput"]), 1),
            "ttft_p50_ms": round(float(result["median_ttft_ms"]), 1), "failed": result["failed"]}


def run(opts: argparse.Namespace) -> dict:
    from serving.local.serve import local_model, serve_env

    known, model = local_model(opts.model)
    served = known.served_name
    env = dict(os.environ, **serve_env("haproxy"))
    env.pop("VLLM_API_KEY", None)
    runs: dict[str, list[dict]] = {"vllm": [], "ray": []}
    log_path = REPO_ROOT / ".cache" / "bench-serving-path.log"
    with open(log_path, "w") as log:
        for _ in range(opts.starts):
            for kind in ("vllm", "ray"):
                proc = _server(kind, model, known, env, log)
                try:
                    _wait_ready(f"http://127.0.0.1:{PORT}", proc)
                    bench_once(model, served, opts, opts.concurrency)  # warm-up, discarded
                    runs[kind].append(bench_once(model, served, opts, opts.prompts))
                finally:
                    _stop(proc)
                print(f"{kind:5s} start {len(runs[kind])}: {runs[kind][-1]}", flush=True)
    tps = {k: statistics.median(r["output_tokens_per_s"] for r in v) for k, v in runs.items()}
    ttft = {k: statistics.median(r["ttft_p50_ms"] for r in v) for k, v in runs.items()}
    return {"runs": runs, "tokens_per_s": tps, "ttft_p50_ms": ttft,
            "throughput_ratio": round(tps["ray"] / tps["vllm"], 3),
            "ttft_p50_overhead_ms": round(ttft["ray"] - ttft["vllm"], 1),
            "failed": sum(r["failed"] for v in runs.values() for r in v)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.serving_path", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=TINY_LOCAL_MODEL.served_name, choices=sorted(LOCAL_MODELS),
                        help="local model (config/models.py); the tiny one isolates the serving path's overhead")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--input-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args(argv)
    for name in ("starts", "input_len", "output_len", "concurrency", "prompts"):
        if getattr(opts, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    result = run(opts)
    if opts.json:
        print(json.dumps(result, indent=2))
    print(f"vllm.benchmarks.serve: random {opts.input_len} in / {opts.output_len} out, {opts.concurrency} "
          f"concurrent, {opts.prompts} prompts, {opts.starts} fresh starts each, warm-up discarded")
    print(f"vLLM OpenAI server : {result['tokens_per_s']['vllm']:8.1f} output tok/s  TTFT p50 {result['ttft_p50_ms']['vllm']:7.1f} ms")
    print(f"Ray Serve app      : {result['tokens_per_s']['ray']:8.1f} output tok/s  TTFT p50 {result['ttft_p50_ms']['ray']:7.1f} ms")
    print(f"throughput ratio   : {result['throughput_ratio']:.3f}  (target >= {TARGET_RATIO})")
    print(f"TTFT p50 overhead  : {result['ttft_p50_overhead_ms']:+.1f} ms  (target <= +{TARGET_TTFT_OVERHEAD_MS:g} ms)")
    print(f"failed requests    : {result['failed']}")


if __name__ == "__main__":
    main()
