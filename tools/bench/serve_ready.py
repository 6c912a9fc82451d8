"""What a replica start costs besides loading the model: the "Serve ready" phase of the cold-start budget,
measured here in local mode (the cluster's app, Ray Serve and HAProxy, on the CPU).

    .venv-serving/bin/python -m tools.bench.serve_ready [--starts 3]

For each of `--starts` fresh starts of local mode with the tiny model (nothing to load: its weights are
a few MB), one server alive at a time: a client asks for one streamed token every 0.1 s from the launch
on; after the first token the server is stopped and its Ray session logs are read. Printed per start
and as medians:

  worker join          a second raylet joining a running head (ray.cluster_utils.Cluster.add_node, what a
                       worker pod's `ray start --address` runs): the node registered and alive
  Ray placement        the Serve controller's "started successfully ... after X s" minus its "constructor
                       ... took Y s": the actor's process start and Ray's scheduling
  vLLM start, ASGI     Y minus what the engine reports for the model itself (weights, model init, KV
                       cache profile and warm-up): vLLM's imports and config, its EngineCore and worker
                       processes, its OpenAI app and this app's middlewares, the first health check
  model (tiny)         those engine-reported parts, which on Neuron the budget's "Neuron load" and "engine
                       warm-up" phases stand for (printed, not summed)
  routed, first token  the controller's "started successfully" line to the first streamed token through
                       HAProxy: HAProxy adds the replica, the token comes back
  Serve ready          the sum of the four above (not the model): config/cold_start.py's SERVE_READY_S

The worker join is timed on its own (local mode is one node), after each start. The launch's Ray head
start is printed for reference only: in the cluster the head is up before the workers start.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

from config.models import TINY_LOCAL_MODEL
from tools.bench.serving_path import _stop

REPO_ROOT = Path(__file__).resolve().parents[2]
PORT = 18013
READY_LINE = "Serving "  # local mode's line once serve.run() returned (serving/local/serve.py main)
PARTS = ("worker join", "Ray placement", "vLLM start, ASGI", "routed, first token")

# Ray Serve's log line format: "INFO 2026-12-04 19:07:56,371 <component> <id> -- <message>".
_SERVE_TS = re.compile(r"^\w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
_STARTED = re.compile(r"started successfully on node .* after ([\d.]+)s .*took ([\d.]+)s")
# vLLM's own reports of the model work, in the replica worker's stdout (seconds).
_MODEL_WORK = (
    re.compile(r"Initializing model took ([\d.]+) seconds"),
    re.compile(r"Loading weights took ([\d.]+) seconds"),
    re.compile(r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+) s"),
)


def parse_session(controller_log: str, worker_out: str) -> dict[str, float]:
    """The parts of one replica start from its Ray session's logs (text): seconds each, and the wall
    time (epoch) of the controller's "started successfully" line. (The replica's own log is no use:
    its handler buffers up to RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE records and a stopped replica
    loses them.)"""
    for line in controller_log.splitlines():
        started = _STARTED.search(line)
        if started and (stamp := _SERVE_TS.match(line)):
            break
    else:
        raise ValueError("no 'started successfully ... after X s ... took Y s' line in the controller log")
    after, took = float(started.group(1)), float(started.group(2))
    model = sum(float(m.group(1)) for pattern in _MODEL_WORK for m in [pattern.search(worker_out)] if m)
    if not model:
        raise ValueError("no engine report ('Loading weights took', 'init engine ... took') in the worker's output")
    return {"Ray placement": round(after - took, 2), "vLLM start, ASGI": round(took - model, 2),
            "model (tiny)": round(model, 2),
            "started_at": datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()}


def _session_of(proc: subprocess.Popen) -> Path:
    """The Ray session local mode started: Ray names it after the process that started it."""
    root = Path(os.environ.get("RAY_TMPDIR", "/tmp"), "ray")
    found = sorted(root.glob(f"session_*_{proc.pid}"))
    if not found:
        raise RuntimeError(f"no Ray session of process {proc.pid} under {root}")
    return found[-1]


def _read_session(session: Path) -> tuple[str, str]:
    controller = "".join(p.read_text(errors="replace") for p in (session / "logs" / "serve").glob("controller_*.log"))
    pid = re.search(r"\(PID: (\d+)\)", controller)
    worker_out = "".join(p.read_text(errors="replace") for p in (session / "logs").glob(f"worker-*-{pid.group(1)}.out")) if pid else ""
    return controller, worker_out


def _first_token_at(base_url: str, model: str, proc: subprocess.Popen, timeout: float = 300) -> float:
    """Wall time (epoch) of the first streamed token, asking every 0.1 s from the launch on."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 1,
                       "stream": True}).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"local mode exited with {proc.returncode} before answering")
        req = urllib.request.Request(f"{base_url}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                for raw in resp:
                    if raw.startswith(b"data: {") and b'"content"' in raw:
                        return time.time()
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"no token from {base_url} within {timeout:.0f} s")


def worker_join_s() -> float:
    """Seconds for a worker raylet to join a running head and be alive in the GCS."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        started = time.monotonic()
        cluster.add_node(num_cpus=1, wait=True)
        return round(time.monotonic() - started, 2)
    finally:
        cluster.shutdown()


def _wait_for_output(path: Path, line: str, count: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.read_text(errors="replace").count(line) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"local mode did not print {line!r} (log {path})")


def one_start(model_dir: str, log) -> dict[str, float]:
    starts_before = Path(log.name).read_text(errors="replace").count(READY_LINE)
    launched = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "serving.local.serve", "--port", str(PORT), "--model",
                             TINY_LOCAL_MODEL.served_name, "--model-dir", model_dir, "--no-auth"],
                            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        token_at = _first_token_at(f"http://127.0.0.1:{PORT}", TINY_LOCAL_MODEL.served_name, proc)
        # HAProxy may route before serve.run() has returned; local mode handles SIGTERM (a clean
        # shutdown) only from its "Serving ..." line on, and a killed Ray drops the logs read below.
        _wait_for_output(Path(log.name), READY_LINE, starts_before + 1, proc)
    finally:
        _stop(proc)
    parts = parse_session(*_read_session(_session_of(proc)))
    parts["routed, first token"] = round(token_at - parts.pop("started_at"), 2)
    parts["worker join"] = worker_join_s()
    parts["Serve ready"] = round(sum(parts[p] for p in PARTS), 2)
    parts["launch to first token (local)"] = round(token_at - launched, 2)
    return parts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.serve_ready", description=__doc__.splitlines()[0])
    p.add_argument("--starts", type=int, default=3)
    args = p.parse_args(argv)
    if args.starts < 1:
        p.error("--starts: must be >= 1")
    from serving.local.serve import local_model

    _, model_dir = local_model(TINY_LOCAL_MODEL.served_name)
    log_path = REPO_ROOT / ".cache" / "bench-serve-ready.log"
    log_path.parent.mkdir(exist_ok=True)
    runs = []
    print(f"local mode, tiny model, {os.cpu_count()} CPUs; server log {log_path}")
    with open(log_path, "w") as log:
        for i in range(args.starts):
            runs.append(one_start(model_dir, log))
            print(f"  start {i + 1}: " + "  ".join(f"{k} {v:.2f} s" for k, v in runs[-1].items()), flush=True)
    print("median:")
    for key in runs[0]:
        print(f"  {key:<30} {statistics.median(r[key] for r in runs):6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
