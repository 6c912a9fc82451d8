"""A hostile client against the real local server with keys on (vLLM 0.32 + Ray Serve + HAProxy).

The same cases as vLLM 0.16's route driver (tests/serving/hostile_cases.py), sent byte for byte with
http.client (no client-side path normalization), plus what only a real server shows: key rotation
through the mounted-Secret layout, the per-key rate limit (a real Ray actor), slow half-open
connections and a flood. After every test a normal request must still succeed within seconds.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import secrets
import socket
import time

import pytest

from config.request_limits import RequestLimits
from serving.keys import RELOAD_INTERVAL_S
from serving.settings import ServingSettings, local_cpu_args
from tests.serving.hostile_cases import body_cases, limit_cases, route_cases
from tests.support.local_server import write_key

pytestmark = pytest.mark.serving

# The local server's limits: its CPU row of the one builder (serving/deployment.py).
LIMITS = RequestLimits.from_args(ServingSettings.from_args(local_cpu_args("/m", "m")).request_limits)
RECOVERY_S = 10


def _send(server, method: str, path: str, auth: str | None, body=None, timeout: float = 60) -> tuple[int, dict, dict]:
    headers = {"Host": "127.0.0.1"}
    token = {"key": server.api_key, "wrong": "not-the-key", "empty": "", "previous": _team_a(server).get("previous"),
             "lower-scheme": server.api_key, "lower-scheme-wrong": "nope"}.get(auth)
    if auth in ("lower-scheme", "lower-scheme-wrong"):
        headers["Authorization"] = f"bearer {token}"
    elif auth == "basic":
        headers["Authorization"] = "Basic cm91dGU6dGVzdHM="
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}".rstrip() + (" " if auth == "empty" else "")
    elif isinstance(auth, str) and auth.startswith("Bearer "):
        headers["Authorization"] = auth
    payload = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
    if payload is not None:
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request(method, path, body=payload, headers=headers)  # the path goes out exactly as written
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = {}
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed if isinstance(parsed, dict) else {}


def _team_a(server) -> dict:
    return json.loads((server.keys_dir / "team-a").read_text())


def _normal_request(server) -> None:
    status, _, body = _send(server, "POST", "/v1/completions", "key",
                            {"model": server.model, "prompt": "Hello", "max_tokens": 2, "temperature": 0},
                            timeout=RECOVERY_S)
    assert status == 200 and body["usage"]["completion_tokens"] == 2, (status, body)


@pytest.fixture
def server(keyed_local_endpoint):
    yield keyed_local_endpoint
    # Whatever the test did, the server still serves a normal request within seconds.
    _normal_request(keyed_local_endpoint)


def _cases(model: str) -> list[tuple]:
    return route_cases(model) + limit_cases(model, LIMITS) + body_cases(model, LIMITS)


CASE_IDS = [c[0] for c in _cases("m")]


@pytest.mark.parametrize("index", range(len(CASE_IDS)), ids=CASE_IDS)
def test_hostile_request(server, index):
    case_id, method, path, auth, body, status, param = _cases(server.model)[index]
    got, headers, answer = _send(server, method, path, auth, body)
    assert got in (status if isinstance(status, tuple) else (status,)), (case_id, got, answer)
    if got >= 400:
        error = answer.get("error", {})
        assert set(error) >= {"message", "type", "param", "code"}, answer
        assert error["param"] == param, error
        if got == 401:
            assert error["code"] == "invalid_api_key" and headers.get("www-authenticate") == "Bearer"
        if got == 400:
            assert "limit of" in error["message"], error


def test_a_rotated_key_works_old_and_new_together_then_the_old_one_stops(server):
    old = _team_a(server)
    new = secrets.token_urlsafe(24)
    assert _send(server, "GET", "/v1/models", f"Bearer {old['current']}")[0] == 200
    # Rotation step 1 (docs/security.md): the new key becomes current, the old one previous.
    write_key(server.keys_dir, "team-a", new, previous=old["current"])
    deadline = time.monotonic() + RELOAD_INTERVAL_S + 5
    while _send(server, "GET", "/v1/models", f"Bearer {new}")[0] != 200:
        assert time.monotonic() < deadline, "the new key never became valid"
        time.sleep(0.5)
    assert _send(server, "GET", "/v1/models", f"Bearer {old['current']}")[0] == 200  # both valid together
    assert _send(server, "GET", "/v1/models", f"Bearer {old['previous']}")[0] == 401  # the one before is gone
    # Step 3: drop "previous" once every client has moved.
    write_key(server.keys_dir, "team-a", new)
    deadline = time.monotonic() + RELOAD_INTERVAL_S + 5
    while _send(server, "GET", "/v1/models", f"Bearer {old['current']}")[0] != 401:
        assert time.monotonic() < deadline, "the retired key was still accepted"
        time.sleep(0.5)
    assert _send(server, "GET", "/v1/models", f"Bearer {new}")[0] == 200
    write_key(server.keys_dir, "team-a", new, previous=old["current"])  # leave a previous for "previous" cases


def test_rate_limited_key_gets_429_with_retry_after_others_unaffected(server):
    key = json.loads((server.keys_dir / "limited").read_text())["current"]
    rpm = server.rate_limits["limited"]
    statuses = [_send(server, "GET", "/v1/models", f"Bearer {key}") for _ in range(rpm + 1)]
    assert [s for s, _, _ in statuses] == [200] * rpm + [429], [s for s, _, _ in statuses]
    _, headers, body = statuses[-1]
    assert int(headers["retry-after"]) >= 1 and body["error"]["code"] == "rate_limit_exceeded"
    assert _send(server, "GET", "/v1/models", "key")[0] == 200  # the local key has no limit


def _open_slow(server, count: int, key: str | None) -> list[socket.socket]:
    """`count` connections whose body never arrives, and `count` whose headers never end."""
    auth = b"Authorization: Bearer " + key.encode() + b"\r\n" if key else b""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n" + auth +
                     b"\r\n{\"model\":")
        sockets.append(sock)
        half = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        half.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
        sockets.append(half)
    time.sleep(1)
    return sockets


def _timed_normal_request(server, budget_s: float) -> float:
    started = time.monotonic()
    status, _, body = _send(server, "POST", "/v1/completions", "key",
                            {"model": server.model, "prompt": "Hello", "max_tokens": 2}, timeout=budget_s)
    assert status == 200, (status, body)
    return time.monotonic() - started


def test_slow_half_open_connections_without_a_key_hold_nothing(server):
    """The key is checked on the headers: a keyless slow body is a 401 at once, and headers that
    never end stay in HAProxy, away from the replica."""
    sockets = _open_slow(server, 64, key=None)
    try:
        assert _timed_normal_request(server, RECOVERY_S) < RECOVERY_S
    finally:
        for sock in sockets:
            sock.close()


def test_slow_bodies_with_a_key_hold_a_slot_at_most_body_timeout(server):
    """A key holder's never-finished bodies each hold one of the replica's max_ongoing_requests slots
    for body_timeout_s (then 408); a normal request waits at most that long (and the key's rate
    limit, when it has one, bounds how many such requests it may send)."""
    slots = ServingSettings.from_args(local_cpu_args("/m", "m")).max_ongoing_requests
    sockets = _open_slow(server, slots + 8, key=server.api_key)
    try:
        assert _timed_normal_request(server, LIMITS.body_timeout_s + RECOVERY_S) < LIMITS.body_timeout_s + RECOVERY_S
    finally:
        for sock in sockets:
            sock.close()


def test_a_flood_of_bad_requests_leaves_the_server_serving(server):
    cases = [("POST", "/v1/chat/completions", "none", {"model": server.model, "messages": []}),
             ("POST", "/v1/chat/completions", "key", {"model": server.model, "messages": [], "n": 10_000}),
             ("POST", "/invocations", "key", {}), ("GET", "/docs", "wrong", None)] * 50
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(lambda c: _send(server, *c, timeout=30)[0], cases))
    assert set(statuses) <= {400, 401, 404}, sorted(set(statuses))
