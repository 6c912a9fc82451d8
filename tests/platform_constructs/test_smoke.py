"""The pipeline's smoke test: the check script against a local OpenAI-compatible server (right and
wrong answers), the in-cluster Job the Lambda starts, the EKS token, and the CodeBuild step's script."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from config.secrets import API_KEY_SECRET, API_KEY_SECRET_KEY
from tests.support.fake_clock import FakeClock
from platform_constructs.smoke_test.runtime import check, runner

REPO = Path(__file__).resolve().parents[2]
MODEL = "NousResearch/Meta-Llama-3-8B-Instruct"
KEY = "test-key-not-a-secret"


class FakeOpenAI:
    """A tiny OpenAI-compatible server on 127.0.0.1 whose answers a test chooses."""

    def __init__(self, *, answer="4", models=(MODEL,), require_key=KEY, unavailable_first=0):
        self.answer, self.models, self.require_key = answer, list(models), require_key
        self.unavailable_left = unavailable_first  # /v1/models answers 503 this many times first
        self.requests: list[tuple[str, dict | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self):
                return not fake.require_key or self.headers.get("Authorization") == f"Bearer {fake.require_key}"

            def do_GET(self):  # noqa: N802
                fake.requests.append((self.path, None))
                if not self._authorised():
                    return self._reply(401, {"error": "Unauthorized"})
                if fake.unavailable_left > 0:
                    fake.unavailable_left -= 1
                    return self._reply(503, {"error": "no healthy replica yet"})
                self._reply(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]})

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append((self.path, body))
                if not self._authorised():
                    return self._reply(401, {"error": "Unauthorized"})
                self._reply(200, {
                    "id": "cmpl-1", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": fake.answer}}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
                })

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def run_check(base_url, *args, key=KEY):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    if key:
        env["OPENAI_API_KEY"] = key
    # Exactly as the Job runs it: the file on its own with a plain python (stdlib only).
    return subprocess.run([sys.executable, str(REPO / "platform_constructs/smoke_test/runtime/check.py"), "--base-url", base_url, *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_right_answer_passes():
    with FakeOpenAI() as server:
        result = run_check(server.base_url, "--model", MODEL)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith(check.RESULT_MARKER))
    assert json.loads(line[len(check.RESULT_MARKER):])["ok"] is True
    paths = [p for p, _ in server.requests]
    assert paths == ["/v1/models", "/v1/chat/completions"]
    body = server.requests[1][1]
    assert body["model"] == MODEL and body["temperature"] == 0
    assert KEY not in result.stdout + result.stderr, "the API key is never printed"


def test_wrong_answer_fails_the_stage():
    with FakeOpenAI(answer="The answer is five.") as server:
        result = run_check(server.base_url, "--model", MODEL)
    assert result.returncode == 1
    assert "wrong answer" in result.stderr and "five" in result.stderr


def test_model_not_served_fails():
    with FakeOpenAI(models=["some/other-model"]) as server:
        result = run_check(server.base_url, "--model", MODEL)
    assert result.returncode == 1 and "does not list" in result.stderr and "some/other-model" in result.stderr


def test_missing_key_is_reported_as_http_401():
    with FakeOpenAI() as server:
        result = run_check(server.base_url, "--model", MODEL, key=None)
    assert result.returncode == 1 and "HTTP 401" in result.stderr


def test_an_endpoint_still_starting_is_waited_for():
    with FakeOpenAI(unavailable_first=2) as server:
        result = run_check(server.base_url, "--model", MODEL, "--wait-seconds", "60", "--poll-seconds", "0.2")
        calls = [p for p, _ in server.requests]
    assert result.returncode == 0, result.stdout + result.stderr
    assert calls == ["/v1/models"] * 3 + ["/v1/chat/completions"]
    assert result.stdout.count("waiting for the API") == 2 and "HTTP 503" in result.stdout


def test_without_wait_one_unavailable_answer_fails():
    with FakeOpenAI(unavailable_first=1) as server:
        result = run_check(server.base_url, "--model", MODEL)
    assert result.returncode == 1 and "HTTP 503" in result.stderr


def test_waiting_stops_at_its_deadline_and_a_wrong_key_is_not_waited_for():
    clock = FakeClock()
    with FakeOpenAI(unavailable_first=10**6) as server:
        with pytest.raises(check.SmokeFailure, match="HTTP 503"):
            check.wait_for_models(server.base_url, KEY, MODEL, wait_seconds=60, poll_seconds=10,
                                  clock=clock, sleep=clock.sleep, log=lambda *a, **k: None)
    assert clock.t == 60  # the last try at the deadline, none after it
    clock = FakeClock()
    with FakeOpenAI() as server:
        with pytest.raises(check.SmokeFailure, match="HTTP 401"):
            check.wait_for_models(server.base_url, "wrong", MODEL, wait_seconds=600, clock=clock, sleep=clock.sleep,
                                  log=lambda *a, **k: None)
    assert clock.t == 0


def test_nothing_listening_is_a_clear_failure():
    result = run_check("http://127.0.0.1:9/v1", "--model", MODEL)
    assert result.returncode == 1 and "cannot connect" in result.stderr


# --- the Job and the Lambda's control loop -----------------------------------------------------------

def _manifest(name="smoke-1"):
    return runner.job_manifest(name, namespace="vllm", configmap="smoke-test", image="python:x",
                               base_url="http://svc/v1", model=MODEL, api_key_secret=API_KEY_SECRET,
                               api_key_secret_key=API_KEY_SECRET_KEY, deadline_seconds=300)


def test_job_is_one_shot_restricted_and_reads_the_key_from_the_secret():
    job = _manifest()
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 300 and spec["ttlSecondsAfterFinished"]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    assert c["command"][:2] == ["python", "/smoke/check.py"] and MODEL in c["command"]
    assert c["env"] == [{"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": API_KEY_SECRET, "key": API_KEY_SECRET_KEY, "optional": True}}}]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True


class FakeKube:
    """In-memory stand-in for the three Kubernetes API calls the runner makes."""

    def __init__(self, *, status_after: int, status: dict, log: str):
        self.calls: list[tuple[str, str]] = []
        self.polls = 0
        self.status_after, self.status, self.log = status_after, status, log
        self.created = None

    def call(self, method, path, body=None, raw=False):
        self.calls.append((method, path))
        if method == "POST":
            self.created = body
            return body
        if path.endswith("/log"):
            return self.log
        if "/pods?" in path:
            name = urllib.parse.unquote(path.split("labelSelector=")[1]).split("=")[1]
            return {"items": [{"metadata": {"name": f"{name}-abcde"}}]}
        self.polls += 1
        return {"status": self.status if self.polls > self.status_after else {"active": 1}}


def test_job_success_returns_the_result_line():
    ok = check.RESULT_MARKER + json.dumps({"ok": True, "model": MODEL, "answer": "4"})
    kube = FakeKube(status_after=2, status={"succeeded": 1}, log=f"hello\n{ok}\n")
    clock = FakeClock()
    result = runner.run_job(kube, _manifest(), timeout_seconds=300, poll_seconds=10, clock=clock, sleep=clock.sleep)
    assert result["ok"] is True and result["answer"] == "4"
    assert kube.created["metadata"]["name"] == "smoke-1"
    assert kube.calls[0] == ("POST", "/apis/batch/v1/namespaces/vllm/jobs")
    assert clock.t == 20


def test_failed_job_raises_with_the_reason():
    bad = check.RESULT_MARKER + json.dumps({"ok": False, "error": "wrong answer to 'What is 2 + 2?': '5'"})
    kube = FakeKube(status_after=0, status={"failed": 1}, log=bad)
    clock = FakeClock()
    with pytest.raises(runner.SmokeTestFailed, match="wrong answer"):
        runner.run_job(kube, _manifest(), timeout_seconds=300, clock=clock, sleep=clock.sleep)


def test_job_that_never_finishes_times_out():
    kube = FakeKube(status_after=10**6, status={}, log="")
    clock = FakeClock()
    with pytest.raises(runner.SmokeTestFailed, match="did not finish within 60 s"):
        runner.run_job(kube, _manifest(), timeout_seconds=60, poll_seconds=10, clock=clock, sleep=clock.sleep)
    assert clock.t <= 60


def test_eks_token_is_a_presigned_sts_call_for_the_cluster(monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret-for-signing-only")
    token = runner.eks_token("llama3-inf2-dev", "us-east-1", session=boto3.Session(region_name="us-east-1"))
    assert token.startswith(runner.TOKEN_PREFIX)
    encoded = token[len(runner.TOKEN_PREFIX):]
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    assert url.startswith("https://sts.us-east-1.amazonaws.com/")
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]
    assert query["X-Amz-Expires"] == ["60"]


# --- the CodeBuild step's script ---------------------------------------------------------------------

# The CodeBuild step's script (invoke.sh -> pipeline_step.py) is tested in test_smoke_wait.py.
