"""Local mode's cold start from an empty and from a warm model store (issue 12's local figures).

    .venv/bin/python -m tools.bench.local_cold_start [--rounds 2]

What a new worker does, on this machine, against moto's S3 server on 127.0.0.1:
  empty store: `prepare` (the operator's upload of the model) + `fetch` + local mode start + first token
  warm store:                                                  `fetch` + local mode start + first token
alternating (empty, warm, empty, ...), each with a fresh store copy and a fresh weights directory, one
server alive at a time. The model is local mode's tiny Llama (built once, before timing): on the CPU
nothing compiles, so "empty" differs from "warm" by the upload only; on Neuron the empty path also
compiles once (`make cold-start` budgets both). Prints every phase of every round and the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.bench.fetch import moto_s3
from tools.bench.overhead import _wait_ready
from tools.bench.serving_path import _stop

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVING_PYTHON = REPO_ROOT / ".venv-serving" / "bin" / "python"
PORT = 18012
BUCKET = "local-cold-start"
MODEL, REVISION = "local/tiny-llama3", "0" * 40


def _tiny_model() -> str:
    out = subprocess.run([str(SERVING_PYTHON), "-m", "serving.local.tiny_model"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def _first_token_s(base_url: str, started: float) -> float:
    """Seconds from `started` until the first streamed token of one chat completion."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)
    model = client.models.list().data[0].id
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}],
                                            max_tokens=8, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            return time.monotonic() - started
    raise RuntimeError("the stream ended without a token")


def one_start(s3, model_dir: str, work: Path, *, empty: bool) -> dict[str, float]:
    """One cold start; the store is emptied first so each round starts alike."""
    from serving import model_store as ms

    for key in ms.list_objects(s3, BUCKET, ""):
        s3.delete_object(Bucket=BUCKET, Key=key)
    prefix = ms.weights_prefix(MODEL, REVISION)
    if not empty:
        ms.upload_dir(s3, BUCKET, prefix, model_dir)
    weights = work / "weights"
    shutil.rmtree(weights, ignore_errors=True)
    phases: dict[str, float] = {}
    t0 = time.monotonic()
    if empty:
        ms.upload_dir(s3, BUCKET, prefix, model_dir)
        phases["prepare"] = time.monotonic() - t0
    t = time.monotonic()
    ms.fetch_prefix(s3, BUCKET, prefix, weights)
    phases["fetch"] = time.monotonic() - t
    t = time.monotonic()
    base_url = f"http://127.0.0.1:{PORT}"
    with open(work / "serve.log", "ab") as log:
        proc = subprocess.Popen([str(SERVING_PYTHON), "-m", "serving.local.serve", "--port", str(PORT), "--model",
                                 "tiny-llama3", "--model-dir", str(weights), "--no-auth"], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(base_url, proc, timeout=300)
            phases["start to first token"] = _first_token_s(base_url, t)
            phases["total"] = time.monotonic() - t0
        finally:
            _stop(proc)
    return phases


def _rounds(s3, model_dir: str, work: Path, rounds: int, results: dict[str, list[dict[str, float]]]) -> None:
    print(f"local mode cold start, tiny model {model_dir}, {os.cpu_count()} CPUs, log {work}/serve.log")
    for r in range(rounds):
        for kind in results:
            phases = one_start(s3, model_dir, work, empty=kind == "empty store")
            results[kind].append(phases)
            print(f"  round {r + 1} {kind:<12} " + "  ".join(f"{k} {v:.1f} s" for k, v in phases.items()), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.local_cold_start", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2, help="starts of each kind, alternating")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds: must be >= 1")
    if not SERVING_PYTHON.exists():
        p.error(f"{SERVING_PYTHON} is missing: run `make setup-serving`")
    model_dir = _tiny_model()
    work = Path(tempfile.mkdtemp(prefix="bench-local-cold-start-"))
    results: dict[str, list[dict[str, float]]] = {"empty store": [], "warm store": []}
    try:
        with moto_s3(BUCKET) as s3:
            _rounds(s3, model_dir, work, args.rounds, results)
        print("median:")
        for kind, runs in results.items():
            print(f"  {kind:<12} " + "  ".join(f"{k} {statistics.median(run[k] for run in runs):.1f} s"
                                               for k in runs[0]))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
