"""The endpoint the tools' end-to-end tests talk to: the real local-mode server.

Uses the session-wide `local_endpoint` fixture of the serving tests when it is registered (one model
server per test session); otherwise starts local mode (`python -m serving.local.serve`) itself,
once per session, with an API key so the wrong-key path is tested too.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import json
import urllib.error
import urllib.request

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVING_PYTHON = ROOT / ".venv-serving" / "bin" / "python"
WEBUI_PYTHON = ROOT / ".venv-webui" / "bin" / "python"
# This suite's own port range on shared machines (servers bind to 127.0.0.1 only).
PORT_RANGE = range(18150, 18200)


@dataclass(frozen=True)
class ToolsEndpoint:
    base_url: str  # ends in /v1
    model: str
    api_key: str | None  # None: the server accepts any key


def free_port() -> int:
    for port in PORT_RANGE:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


def wait_http(url: str, *, headers: dict | None = None, timeout_s: float, proc: subprocess.Popen | None = None,
              log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered:\n{tail}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


def get_json(url: str, key: str | None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
        return json.load(resp)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _adapt(shared) -> ToolsEndpoint:
    """Reads whatever shape the serving fixture returns (a URL string or an object with fields)."""
    if isinstance(shared, str):
        base_url, model, key = shared, None, None
    else:
        base_url = getattr(shared, "base_url", None) or getattr(shared, "url")
        model = getattr(shared, "model", None) or getattr(shared, "served_model_name", None)
        key = getattr(shared, "api_key", None)
    base_url = base_url.rstrip("/")
    if not base_url.endswith("/v1"):
        base_url += "/v1"
    if model is None:
        model = get_json(f"{base_url}/models", key)["data"][0]["id"]
    return ToolsEndpoint(base_url, model, key)


@pytest.fixture(scope="session")
def tools_endpoint(request, tmp_path_factory) -> ToolsEndpoint:
    try:
        shared = request.getfixturevalue("local_endpoint")
    except pytest.FixtureLookupError:
        shared = None
    if shared is not None:
        yield _adapt(shared)
        return

    if not SERVING_PYTHON.exists():
        pytest.fail("local mode is not set up: run `make setup-serving`")
    port = free_port()
    key = secrets.token_urlsafe(16)  # generated per session; never stored
    log = tmp_path_factory.mktemp("local-mode") / "serve.log"
    env = {**os.environ, "VLLM_API_KEY": key}
    with open(log, "w") as out:
        proc = subprocess.Popen([str(SERVING_PYTHON), "-m", "serving.local.serve", "--port", str(port),
                                 # Ray's own proxy: HAProxy binds fixed stats ports another local mode may hold
                                 "--proxy", "ray"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        wait_http(f"{base_url}/models", headers={"Authorization": f"Bearer {key}"}, timeout_s=600, proc=proc, log=log)
        yield ToolsEndpoint(base_url, get_json(f"{base_url}/models", key)["data"][0]["id"], key)
    finally:
        stop(proc)


@pytest.fixture
def endpoint_env(tools_endpoint, monkeypatch) -> ToolsEndpoint:
    """The standard OPENAI_* variables pointing at the endpoint, as a user would set them."""
    monkeypatch.setenv("OPENAI_BASE_URL", tools_endpoint.base_url)
    if tools_endpoint.api_key:
        monkeypatch.setenv("OPENAI_API_KEY", tools_endpoint.api_key)
    else:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    return tools_endpoint
