"""Two small ASGI middlewares around vLLM's app: the API key check and Ray Serve metrics on /metrics.

Pure ASGI (no BaseHTTPMiddleware) so streamed responses pass through untouched, chunk by chunk.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import urllib.request
from typing import Awaitable, Callable

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

GUARDED_PREFIX = "/v1"


async def _send_json(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": payload})


class ApiKeyMiddleware:
    """Every /v1 route needs `Authorization: Bearer <key>`; /health and /metrics stay open for probes.

    vLLM has its own check, but it answers `{"error": "Unauthorized"}`; clients (the openai SDK,
    Open WebUI) expect OpenAI's error object, so this one answers in that shape.
    """

    def __init__(self, app, api_key: str) -> None:
        if not api_key:
            raise ValueError("api_key must be non-empty")
        self.app = app
        self._key_hash = hashlib.sha256(api_key.encode()).digest()

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return False
                # Compare fixed-size digests in constant time (no length leak).
                return secrets.compare_digest(hashlib.sha256(token.strip().encode()).digest(), self._key_hash)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            return await self.app(scope, receive, send)
        path = scope["path"][len(scope.get("root_path", "")):] if scope["path"].startswith(scope.get("root_path", "")) else scope["path"]
        if path.startswith(GUARDED_PREFIX) and not self._authorized(scope):
            return await _send_json(send, 401, {"error": {
                "message": "Missing or invalid API key. Send the header 'Authorization: Bearer <key>'.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }}, headers=[(b"www-authenticate", b"Bearer")])
        return await self.app(scope, receive, send)


class RayServeMetricsMiddleware:
    """Append this node's Ray Serve metrics (from the Ray metrics agent) to vLLM's /metrics page.

    One scrape of the serving endpoint then shows both the engine (vllm:*) and Ray Serve
    (ray_serve_*) series. If the agent cannot be reached the vLLM metrics are still served.
    """

    def __init__(self, app, metrics_url: Callable[[], str | None]) -> None:
        self.app = app
        self._metrics_url = metrics_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != "/metrics" or scope.get("method") != "GET":
            return await self.app(scope, receive, send)
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        # Ask for an uncompressed page: the Ray Serve lines are appended as plain text.
        plain = dict(scope, headers=[(k, v) for k, v in scope.get("headers", ()) if k != b"accept-encoding"])
        await self.app(plain, receive, capture)
        body = b"".join(chunks)
        if start.get("status") == 200:
            body += await _ray_serve_metrics(self._metrics_url())
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 500), "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _ray_serve_metrics(url: str | None) -> bytes:
    if not url:
        return b""
    import asyncio

    def fetch() -> bytes:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (node-local agent)
            return resp.read()

    try:
        text = (await asyncio.to_thread(fetch)).decode()
    except OSError:
        return b""
    keep = [line for line in text.splitlines()
            if line.startswith("ray_serve_") or line.startswith(("# HELP ray_serve_", "# TYPE ray_serve_"))]
    return ("\n".join(keep) + "\n").encode() if keep else b""
