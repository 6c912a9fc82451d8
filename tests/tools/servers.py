"""Helpers for the tools' tests that start servers: this suite's port range (for
tests.support.ports.free_port), waiting for HTTP, stopping a process group, Open WebUI as
`make webui-local` runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEBUI_PYTHON = ROOT / ".venv-webui" / "bin" / "python"
# This suite's own port range on shared machines (servers bind to 127.0.0.1 only): free_port(PORT_RANGE).
PORT_RANGE = range(18150, 18200)


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


def webui_api(base: str, path: str, *, token: str | None = None, json_body: dict | None = None,
              data: bytes | None = None, content_type: str | None = None, timeout: float = 120) -> tuple[int, object]:
    """One call to Open WebUI's HTTP API: (status, JSON body), an error's body as JSON when it is JSON,
    else as text. POST when there is a body (`json_body`, or raw `data` of `content_type`), else GET."""
    body = json.dumps(json_body).encode() if json_body is not None else data
    req = urllib.request.Request(base + path, data=body, method="POST" if body is not None else "GET")
    if json_body is not None:
        req.add_header("Content-Type", "application/json")
    if content_type:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class LocalWebUI:
    """Open WebUI started by tools/webui/run_local.py (`make webui-local`), as a user runs it: signup
    off, the admin bootstrapped with the password run_local.py writes into the data dir."""
    data_dir: Path
    base_url: str  # the OpenAI-compatible endpoint it talks to
    api_key: str
    port: int = 0  # 0: a free port at start()
    proc: subprocess.Popen | None = None
    log: Path | None = None
    extra_env: dict[str, str] | None = None  # more of Open WebUI's settings (run_local.py passes them on)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_email(self) -> str:
        from config.webui import ADMIN_EMAIL
        return ADMIN_EMAIL

    @property
    def password_file(self) -> Path:
        from tools.webui.run_local import ADMIN_PASSWORD_FILE
        return self.data_dir / ADMIN_PASSWORD_FILE

    @property
    def admin_password(self) -> str:
        return self.password_file.read_text().strip()

    def start(self, *, timeout_s: float = 300) -> "LocalWebUI":
        if not WEBUI_PYTHON.exists():
            raise RuntimeError("Open WebUI is not set up: run `make setup-webui`")
        from tests.support.ports import free_port
        self.port = self.port or free_port(PORT_RANGE)
        self.log = self.data_dir.parent / f"{self.data_dir.name}-open-webui.log"
        cmd = [str(WEBUI_PYTHON), "-m", "tools.webui.run_local", "--port", str(self.port), "--base-url",
               self.base_url, "--data-dir", str(self.data_dir)]
        env = {**os.environ, "OPENAI_API_KEY": self.api_key, **(self.extra_env or {})}
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        try:
            wait_http(f"{self.url}/health", timeout_s=timeout_s, proc=self.proc, log=self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
