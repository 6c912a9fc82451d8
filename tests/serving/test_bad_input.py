"""Bad input never hurts the server: an OpenAI-style 4xx for each case, and the next request is served."""

from __future__ import annotations

import json
import socket

import pytest

from tests.serving.bad_requests import CASES, MODEL
from tests.serving.conftest import assert_serving
from tests.support.local_server import LOCAL_MAX_TOKENS

pytestmark = pytest.mark.serving


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name,method,path,body,status", CASES, ids=[c[0] for c in CASES])
def test_bad_request_gets_4xx_and_server_keeps_serving(local_endpoint, http, name, method, path, body, status):
    url = f"{local_endpoint.root_url}{path}"
    headers = {**local_endpoint.headers, "content-type": "application/json"}
    if body is None:
        resp = http.request(method, url, headers=local_endpoint.headers, timeout=60)
    elif isinstance(body, bytes):
        resp = http.request(method, url, data=body, headers=headers, timeout=60)
    else:
        resp = http.request(method, url, data=json.dumps(body).replace(json.dumps(MODEL), json.dumps(local_endpoint.model)),
                            headers=headers, timeout=60)
    assert resp.status_code == status, f"{name}: {resp.status_code} {resp.text[:300]}"
    if path.startswith(("/v1/chat", "/v1/completions")) and status != 405:
        error = resp.json()["error"]  # OpenAI's error object: message, type, param, code
        assert error["message"] and error["type"] and "code" in error and "param" in error
    assert_serving(local_endpoint, http)


def test_client_disconnecting_mid_stream_does_not_hurt(local_endpoint, http):
    body = json.dumps({"model": local_endpoint.model, "messages": [{"role": "user", "content": "Tell a long story"}],
                       "max_tokens": LOCAL_MAX_TOKENS, "ignore_eos": True, "stream": True}).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in local_endpoint.headers.items())
               + "\r\n").encode() + body
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", local_endpoint.port), timeout=30) as sock:
            sock.sendall(request)
            received = b""
            while b"data: " not in received:
                chunk = sock.recv(4096)
                assert chunk, "server closed the stream before sending data"
                received += chunk
        # The socket is closed after the first chunk: the server must abort that generation.
    assert_serving(local_endpoint, http)
    # The aborted requests are no longer running in the engine.
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics = http.get(f"{local_endpoint.root_url}/metrics", timeout=30).text
        running = [l for l in metrics.splitlines() if l.startswith("vllm:num_requests_running")]
        if running and all(float(l.rsplit(" ", 1)[1]) == 0 for l in running):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"aborted streams still running: {running}")
