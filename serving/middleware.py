"""Small ASGI middlewares around vLLM's app: the API key check, the `n` cap, Ray Serve metrics on /metrics.

Pure ASGI (no BaseHTTPMiddleware) so streamed responses pass through untouched, chunk by chunk.
`install()` puts them on vLLM's app; serving/app.py and the vLLM 0.16 route tests both use it.
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

# Paths open without the API key: probes and scrapes only. Everything else needs it, not just /v1:
# vLLM's app also generates on /invocations and /inference/v1/generate, tokenizes on /tokenize, and
# has admin routes (/scale_elastic_ep); a /v1-only guard (vLLM's own --api-key check) leaves those
# open. Ray Serve answers /-/healthz and /-/routes in the replica before this app sees them.
OPEN_PATHS = ("/health", "/metrics", "/ping")
# The generation routes whose `n` (and legacy `best_of`) fan one request out into several sequences.
N_CAPPED_PATHS = ("/v1/completions", "/v1/chat/completions")
N_CAPPED_FIELDS = ("n", "best_of")


def _path(scope: Scope) -> str:
    root = scope.get("root_path", "")
    path = scope["path"]
    return path[len(root):] if root and path.startswith(root) else path


async def _send_json(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": payload})


class ApiKeyMiddleware:
    """Every route needs `Authorization: Bearer <key>` except OPEN_PATHS (/health, /metrics, /ping).

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
        if _path(scope).rstrip("/") not in OPEN_PATHS and not self._authorized(scope):
            return await _send_json(send, 401, {"error": {
                "message": "Missing or invalid API key. Send the header 'Authorization: Bearer <key>'.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }}, headers=[(b"www-authenticate", b"Bearer")])
        return await self.app(scope, receive, send)


class NCapMiddleware:
    """400 for a completion whose `n` (or `best_of`) exceeds the engine's batch (max_num_seqs).

    One request with n = 64 on an 8-slot Neuron engine would hold every slot for its whole length
    (and NxD Inference compiles for exactly max_num_seqs slots). vLLM 0.32 can cap n globally with
    VLLM_MAX_N_SEQUENCES, but vLLM 0.16, the DLC's, has no such setting (not in its vllm/envs.py),
    so the cap is ours, the same on both. The answer has vLLM's own error shape (ErrorResponse:
    message, type "BadRequestError", param, code 400) naming the field and the limit.

    It also answers 400 for a body that is valid JSON but not an object (e.g. `[1, 2, 3]`): vLLM
    0.16's chat request validator crashes on it (AttributeError in check_cache_salt_support, a 500;
    found by tests/serving/test_vllm016_app.py), 0.32 answers 400. Invalid JSON and an `n` that is
    not an integer go on to vLLM, which reports them itself on both versions.
    """

    def __init__(self, app, max_n: int) -> None:
        if max_n < 1:
            raise ValueError("max_n must be >= 1")
        self.app = app
        self.max_n = max_n

    def _problem(self, body: bytes) -> tuple[str, str | None] | None:
        """(message, param) of the 400 to answer, or None to let vLLM handle the request."""
        try:
            request = json.loads(body)
        except ValueError:
            return None
        if not isinstance(request, dict):
            return f"The request body must be a JSON object, got a JSON {type(request).__name__}.", None
        for name in N_CAPPED_FIELDS:
            value = request.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > self.max_n:
                return (f"{name}={value} is above this server's limit of {self.max_n} "
                        f"(max_num_seqs, the engine's batch size); send {name} <= {self.max_n}."), name
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or _path(scope).rstrip("/") not in N_CAPPED_PATHS:
            return await self.app(scope, receive, send)
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        problem = self._problem(body)
        if problem:
            message, param = problem
            return await _send_json(send, 400, {"error": {
                "message": message, "type": "BadRequestError", "param": param, "code": 400}})

        async def replay() -> dict:
            # The buffered body first, then the real channel (vLLM watches it for disconnects).
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)


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


def install(app, *, max_n: int, api_key: str, metrics_url: Callable[[], str | None]) -> None:
    """Put this module's middlewares on vLLM's FastAPI app. Outermost first: the API key (a request
    without it learns nothing else), the n cap, then Ray Serve metrics on /metrics."""
    # vLLM's setup already built Starlette's middleware stack; drop it so it is rebuilt (with these
    # middlewares and Ray Serve's exception handlers) on the first ASGI call.
    app.middleware_stack = None
    app.add_middleware(RayServeMetricsMiddleware, metrics_url=metrics_url)
    app.add_middleware(NCapMiddleware, max_n=max_n)
    if api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=api_key)
