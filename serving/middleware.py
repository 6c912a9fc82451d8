"""Small ASGI middlewares around vLLM's app: the API key, per-key rate limits, the routes and
per-request limits, and Ray Serve metrics on /metrics.

Pure ASGI (no BaseHTTPMiddleware) so streamed responses pass through untouched, chunk by chunk.
`install()` puts them on vLLM's app; serving/app.py and the vLLM 0.16 route tests both use it.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Awaitable, Callable

from config.request_limits import RequestLimits
from serving.keys import KeyRing
from serving.rate_limit import Acquire, retry_after_header
from serving.request_checks import GENERATION_PATHS, Refusal, check_generation

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

# The one path open without a key: vLLM's /health (the engine's liveness), for probes. Ray Serve
# answers its own /-/healthz and /-/routes in the replica before this app sees a request, and
# KubeRay's probes use those and the raylet's port, never this app's routes.
OPEN_PATHS = ("/health",)
# The routes this platform serves: OpenAI's models, completions and chat completions, vLLM's
# tokenizer pair, and the version and metrics pages. Everything else vLLM's app has is a 404 here,
# key or not: /invocations and /inference/v1/generate generate outside these limits' checks,
# /v1/responses and /v1/messages take other request shapes, /scale_elastic_ep and /load are admin
# routes, /docs, /redoc and /openapi.json describe all of them to whoever asks.
ROUTES = {
    "/v1/models": ("GET",),
    "/v1/completions": ("POST",),
    "/v1/chat/completions": ("POST",),
    "/tokenize": ("POST",),
    "/detokenize": ("POST",),
    "/version": ("GET",),
    "/metrics": ("GET",),
    "/health": ("GET",),
}
SCOPE_KEY_NAME = "api_key_name"  # set in the ASGI scope by ApiKeyMiddleware: which named key it was


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


async def _send_error(send: Send, status: int, message: str, *, param: str | None = None,
                      type_: str = "BadRequestError", code: int | str | None = None,
                      headers: list[tuple[bytes, bytes]] = ()) -> None:
    """OpenAI's error object, in vLLM's own shape (ErrorResponse: message, type, param, code)."""
    await _send_json(send, status, {"error": {"message": message, "type": type_, "param": param,
                                              "code": status if code is None else code}}, headers)


class ApiKeyMiddleware:
    """Every request needs `Authorization: Bearer <key>` of a named key, except OPEN_PATHS.

    Every method too (OPTIONS included: no browser origin is allowed, see serving/compat.py, so a
    CORS preflight has nothing to gain). vLLM has its own check, but it covers /v1 only and answers
    `{"error": "Unauthorized"}`; clients (the openai SDK, Open WebUI) expect OpenAI's error object.
    """

    def __init__(self, app, keys: KeyRing) -> None:
        self.app = app
        self._keys = keys

    def _key_name(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return self._keys.identify(token.strip()) if scheme.lower() == "bearer" else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        name = self._key_name(scope)
        if name is None and _path(scope) not in OPEN_PATHS:
            return await _send_error(
                send, 401, "Missing or invalid API key. Send the header 'Authorization: Bearer <key>'.",
                type_="invalid_request_error", code="invalid_api_key", headers=[(b"www-authenticate", b"Bearer")])
        scope[SCOPE_KEY_NAME] = name
        return await self.app(scope, receive, send)


class RateLimitMiddleware:
    """429 + Retry-After when the request's key is over its requests-per-minute (serving/rate_limit.py)."""

    def __init__(self, app, limited: frozenset[str], acquire: Acquire) -> None:
        self.app = app
        self._limited = limited
        self._acquire = acquire

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope.get(SCOPE_KEY_NAME)
        if scope["type"] == "http" and name in self._limited and _path(scope) not in OPEN_PATHS:
            wait_s = await self._acquire(name)
            if wait_s > 0:
                retry = retry_after_header(wait_s)
                return await _send_error(
                    send, 429, f"Rate limit of API key {name!r} reached; retry after {retry} s.",
                    type_="rate_limit_error", code="rate_limit_exceeded", headers=[(b"retry-after", retry.encode())])
        return await self.app(scope, receive, send)


class RequestLimitsMiddleware:
    """The platform's routes only (404 / 405 otherwise), bodies up to max_body_bytes (413), and the
    per-request limits of config/request_limits.py on the generation routes (400 naming the
    parameter and the limit), the same on vLLM 0.16 and 0.32."""

    def __init__(self, app, limits: RequestLimits, max_model_len: int) -> None:
        self.app = app
        self.limits = limits
        self.max_model_len = max_model_len

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[list[dict], bytes] | None:
        """The whole body, or None as soon as it is known to be over the limit (nothing more is read)."""
        limit = self.limits.max_body_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.strip().isdigit() and int(value) > limit:
                return None
        return await asyncio.wait_for(self._receive_all(receive, limit), self.limits.body_timeout_s)

    @staticmethod
    async def _receive_all(receive: Receive, limit: int) -> tuple[list[dict], bytes] | None:
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > limit:
                return None
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        return messages, b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = _path(scope), scope.get("method", "GET")
        methods = ROUTES.get(path)
        if methods is None:
            return await _send_error(send, 404, f"No route {path!r} on this server.", type_="NotFoundError")
        allowed = methods + (("HEAD",) if "GET" in methods else ())
        if method not in allowed:
            return await _send_error(send, 405, f"{method} is not allowed on {path}; use {' or '.join(methods)}.",
                                     type_="MethodNotAllowed", headers=[(b"allow", ", ".join(allowed).encode())])
        if method != "POST":
            return await self.app(scope, receive, send)
        try:
            read = await self._read_body(scope, receive)
        except asyncio.TimeoutError:
            return await _send_error(send, 408, f"The request body did not arrive within "
                                                f"{self.limits.body_timeout_s} s.", type_="BadRequestError")
        if read is None:
            return await _send_error(send, 413, f"The request body is larger than this server's limit of "
                                                f"{self.limits.max_body_bytes} bytes.", type_="BadRequestError")
        messages, body = read
        if path in GENERATION_PATHS:
            try:
                request = json.loads(body)
            except ValueError:
                request = None  # invalid JSON: vLLM reports it itself, on both versions
            else:
                checked = check_generation(path, request, self.limits, body_bytes=len(body),
                                           max_model_len=self.max_model_len)
                if isinstance(checked, Refusal):
                    return await _send_error(send, 400, checked.message, param=checked.param)
                if checked is not request:
                    body = json.dumps(checked).encode()
                    messages = [{"type": "http.request", "body": body, "more_body": False}]
                    scope = dict(scope, headers=[(k, v) for k, v in scope.get("headers", ()) if k != b"content-length"]
                                 + [(b"content-length", str(len(body)).encode())])

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


def install(app, *, keys: KeyRing | None, limits: RequestLimits, max_model_len: int,
            rate_limits: dict[str, int] | None = None, acquire: Acquire | None = None,
            metrics_url: Callable[[], str | None]) -> None:
    """Put this module's middlewares on vLLM's FastAPI app. Outermost first: the API key (a request
    without it learns nothing else, not even which routes exist), its rate limit, the routes and
    request limits, then Ray Serve metrics on /metrics. `keys=None` serves without keys: only ever
    on purpose (settings auth 'disabled')."""
    # vLLM's setup already built Starlette's middleware stack; drop it so it is rebuilt (with these
    # middlewares and Ray Serve's exception handlers) on the first ASGI call.
    app.middleware_stack = None
    app.add_middleware(RayServeMetricsMiddleware, metrics_url=metrics_url)
    app.add_middleware(RequestLimitsMiddleware, limits=limits, max_model_len=max_model_len)
    if rate_limits:
        if keys is None or acquire is None:
            raise ValueError("rate limits need API keys and a limiter")
        app.add_middleware(RateLimitMiddleware, limited=frozenset(rate_limits), acquire=acquire)
    if keys is not None:
        app.add_middleware(ApiKeyMiddleware, keys=keys)
