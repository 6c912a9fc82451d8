"""Which engine settings are fastest for a local model on this CPU: dtype, eager or compiled, threads.

    .venv-serving/bin/python -m tools.bench.cpu_settings [--model smollm2-135m-instruct] [--prompts 32]

For each variant, one at a time: start vLLM's own OpenAI server with local mode's engine options
(serving/settings.py, the model's row of config/models.py) changed by that variant only, time its
start until /health answers, run vLLM's benchmark client once as a warm-up (discarded) and once
measured (random dataset, --ignore-eos), stop it. Prints startup, output tokens/s and TTFT p50 per
variant. Local mode's choice (serving/settings.py engine_options for device "cpu") should be the
fastest row whose startup keeps `make serve-local` under 90 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from config.models import DEFAULT_LOCAL_MODEL
from serving.local.serve import LOCAL_MODELS
from tools.bench import serving_path
from tools.bench.overhead import _wait_ready, vllm_server_command, vllm_server_env

REPO_ROOT = Path(__file__).resolve().parents[2]

# name -> (command-line changes, environment changes) against local mode's options.
VARIANTS: dict[str, tuple[dict[str, str | None], dict[str, str]]] = {
    "float32, eager (local mode)": ({}, {}),
    "bfloat16, eager": ({"--dtype": "bfloat16"}, {}),
    "float32, torch.compile": ({"--enforce-eager": None}, {}),
    "float32, eager, 1 core reserved (vLLM's default)": ({}, {"VLLM_CPU_NUM_OF_RESERVED_CPU": "1"}),
}


def _command(base: list[str], changes: dict[str, str | None]) -> list[str]:
    cmd = list(base)
    for flag, value in changes.items():
        if flag in cmd:
            i = cmd.index(flag)
            takes_value = i + 1 < len(cmd) and not cmd[i + 1].startswith("--")
            del cmd[i:i + (2 if takes_value else 1)]
        if value is not None:
            cmd += [flag, value]
    return cmd


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.cpu_settings", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_LOCAL_MODEL.served_name, choices=sorted(LOCAL_MODELS))
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--only", action="append", default=[], help="run only this variant (repeatable)")
    opts = parser.parse_args(argv)

    from serving.local.serve import local_model, serve_env

    known, model = local_model(opts.model)
    env = vllm_server_env(model, known.served_name, dict(os.environ, **serve_env("haproxy")), known)
    base = vllm_server_command(model, serving_path.PORT, known.served_name, known)
    rows = []
    log_path = REPO_ROOT / ".cache" / "bench-cpu-settings.log"
    with open(log_path, "w") as log:
        for name, (flags, extra_env) in VARIANTS.items():
            if opts.only and name not in opts.only:
                continue
            started = time.monotonic()
            proc = subprocess.Popen(_command(base, flags), env={**env, **extra_env}, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=REPO_ROOT)
            try:
                _wait_ready(f"http://127.0.0.1:{serving_path.PORT}", proc, timeout=600)
                startup = time.monotonic() - started
                serving_path.bench_once(model, known.served_name, opts, opts.concurrency, log)  # warm-up, discarded
                result = serving_path.bench_once(model, known.served_name, opts, opts.prompts, log, seed=1)
            finally:
                serving_path._stop(proc)
            rows.append((name, startup, result))
            print(f"{name:34s} startup {startup:6.1f} s  {result['output_tokens_per_s']:7.1f} output tok/s  "
                  f"TTFT p50 {result['ttft_p50_ms']:8.1f} ms  failed {result['failed']}", flush=True)
    print(f"{known.served_name}: random {opts.input_len} in / {opts.output_len} out, {opts.concurrency} concurrent, "
          f"{opts.prompts} prompts; {os.cpu_count()} CPUs; server log {log_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
