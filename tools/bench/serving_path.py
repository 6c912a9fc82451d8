"""The serving path against vLLM alone, measured with vLLM's own benchmark client (issue 12's method).

    .venv-serving/bin/python -m tools.bench.serving_path [--model tiny-llama3|smollm2-135m-instruct] [--starts 3]
                                                         [--input-len 512] [--output-len 128]
                                                         [--concurrency 16] [--prompts 64] [--json]

For each of `--starts` fresh starts, alternating: start ONE server (vLLM's own OpenAI server, then the
Ray Serve app of local mode, same engine options from serving/settings.py), run `vllm.benchmarks.serve`
once as a warm-up (discarded), then `--runs` measured runs back to back (random dataset, --ignore-eos),
stop it. Only one server is alive at a time, so neither steals the other's cores. Prints every
measured run, the medians over all runs and over each start's FIRST measured run (the first minute
after a start, when Ray's own processes are youngest), the throughput ratio (target >= 0.95) and the
TTFT p50 overhead (target <= +20 ms) of both.

A measured run of 256 prompts takes about 15 s on 2 cores; one of 64 prompts (3 s) varied by 1.6x
between runs of the same server here (1770-2790 output tok/s), more than the effect being measured.

Measured here (2 cores, tiny model, 3 starts each) before the OMP_NUM_THREADS fix in
serving/settings.py: ratio 0.56; the figures after it are in docs/serving.md ("Serving path against vLLM alone").
"""

from __future__ import annotations

import argparse
import contextlib
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


def bench_once(model: str, served_name: str, opts: argparse.Namespace, prompts: int, log=None, seed: int = 0) -> dict:
    """One run of vLLM's benchmark client (vllm/benchmarks/serve.py) against the server on PORT; its
    own printout (its arguments, its result table) goes to `log`. The random dataset is drawn from
    `seed`: a run that repeats an earlier run's prompts hits the engine's prefix cache (TTFT p50 fell
    from 75-115 ms to 46-60 ms here when runs after the first reused seed 0)."""
    from vllm.benchmarks.serve import add_cli_args, main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    args = parser.parse_args([
        "--backend", "openai-chat", "--endpoint", "/v1/chat/completions",
        "--base-url", f"http://127.0.0.1:{PORT}", "--model", served_name, "--tokenizer", model,
        "--dataset-name", "random", "--random-input-len", str(opts.input_len),
        "--random-output-len", str(opts.output_len), "--num-prompts", str(prompts),
        "--max-concurrency", str(opts.concurrency), "--ignore-eos", "--disable-tqdm", "--seed", str(seed),
    ])
    with contextlib.redirect_stdout(log or sys.stdout):
        result = main(args)
    return {"output_tokens_per_s": round(float(result["output_throughput"]), 1),
            "ttft_p50_ms": round(float(result["median_ttft_ms"]), 1), "failed": result["failed"]}


def _summary(runs: dict[str, list[dict]]) -> dict:
    tps = {k: statistics.median(r["output_tokens_per_s"] for r in v) for k, v in runs.items()}
    ttft = {k: statistics.median(r["ttft_p50_ms"] for r in v) for k, v in runs.items()}
    return {"tokens_per_s": tps, "ttft_p50_ms": ttft,
            "throughput_ratio": round(tps["ray"] / tps["vllm"], 3),
            "ttft_p50_overhead_ms": round(ttft["ray"] - ttft["vllm"], 1)}


def run(opts: argparse.Namespace) -> dict:
    from serving.local.serve import local_model, serve_env

    known, model = local_model(opts.model)
    served = known.served_name
    env = dict(os.environ, **serve_env("haproxy"))
    env.pop("VLLM_API_KEY", None)
    runs: dict[str, list[dict]] = {"vllm": [], "ray": []}
    log_path = REPO_ROOT / ".cache" / "bench-serving-path.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as log:
        for start in range(1, opts.starts + 1):
            for kind in ("vllm", "ray"):
                proc = _server(kind, model, known, env, log)
                try:
                    _wait_ready(f"http://127.0.0.1:{PORT}", proc)
                    # Fresh prompts for every run, the same ones for both servers (seed per start and run).
                    bench_once(model, served, opts, opts.concurrency, log, seed=start * 100)  # warm-up, discarded
                    for i in range(opts.runs):
                        runs[kind].append(bench_once(model, served, opts, opts.prompts, log, seed=start * 100 + i + 1))
                        print(f"{kind:5s} start {start} run {i + 1}: {runs[kind][-1]}", flush=True)
                finally:
                    _stop(proc)
    first = {kind: r[::opts.runs] for kind, r in runs.items()}  # each start's first measured run
    return {"runs": runs, **_summary(runs), "first_run": _summary(first),
            "failed": sum(r["failed"] for v in runs.values() for r in v)}


def _print_summary(title: str, summary: dict) -> None:
    print(title)
    print(f"  vLLM OpenAI server : {summary['tokens_per_s']['vllm']:8.1f} output tok/s  "
          f"TTFT p50 {summary['ttft_p50_ms']['vllm']:7.1f} ms")
    print(f"  Ray Serve app      : {summary['tokens_per_s']['ray']:8.1f} output tok/s  "
          f"TTFT p50 {summary['ttft_p50_ms']['ray']:7.1f} ms")
    print(f"  throughput ratio   : {summary['throughput_ratio']:.3f}  (target >= {TARGET_RATIO})")
    print(f"  TTFT p50 overhead  : {summary['ttft_p50_overhead_ms']:+.1f} ms  (target <= +{TARGET_TTFT_OVERHEAD_MS:g} ms)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.serving_path", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=TINY_LOCAL_MODEL.served_name, choices=sorted(LOCAL_MODELS),
                        help="local model (config/models.py); the tiny one isolates the serving path's overhead")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--input-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=256, help="prompts per measured run")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per start, back to back")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args(argv)
    for name in ("starts", "runs", "input_len", "output_len", "concurrency", "prompts"):
        if getattr(opts, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    result = run(opts)
    if opts.json:
        print(json.dumps(result, indent=2))
    print(f"vllm.benchmarks.serve: random {opts.input_len} in / {opts.output_len} out, {opts.concurrency} "
          f"concurrent, {opts.prompts} prompts per run, {opts.starts} fresh starts x {opts.runs} runs each, "
          f"warm-up discarded")
    _print_summary(f"all {opts.starts * opts.runs} runs (medians)", result)
    _print_summary(f"each start's first run, right after the start (medians of {opts.starts})", result["first_run"])
    print(f"failed requests    : {result['failed']}")


if __name__ == "__main__":
    main()
