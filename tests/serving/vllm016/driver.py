"""Run inside .venv-vllm016: build the serving app through serving/compat.py on vLLM 0.16's own OpenAI
layer, with FakeEngineClientForRouteTests behind init_app_state, and drive every route it has.

    .venv-vllm016/bin/python -m tests.serving.vllm016.driver   # prints one JSON line

The app is built exactly as serving/app.py builds it in the replica (compat.engine_namespace from
ServingSettings.engine_options, compat.openai_app, middleware.install) -- only the engine is a double.
tests/serving/test_vllm016_app.py asserts on the JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
API_KEY = "route-tests-key"
# A second named key in the middle of a rotation ({"current": new, "previous": old}), and a key with
# a requests-per-minute limit (RATE_LIMIT requests, then 429).
ROTATING_KEY_NEW, ROTATING_KEY_OLD = "rotating-new", "rotating-old"
LIMITED_KEY, RATE_LIMIT = "limited-key", 3
RAY_SERVE_LINE = "ray_serve_num_ongoing_http_requests 0"


def tiny_model() -> Path:
    """The local tiny Llama, built with this venv's transformers (4.x, as in the DLC): a tokenizer saved
    by transformers 5 (the local-mode venv's) does not load in 4.x."""
    import transformers

    from serving.local.tiny_model import _source_hash, build

    major = transformers.__version__.split(".")[0]
    return build(ROOT / ".cache" / f"tiny-llama-{_source_hash()}-transformers{major}")


def fake_ray_metrics_agent() -> str:
    """A stand-in for the node's Ray metrics agent, for RayServeMetricsMiddleware."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = f"# HELP other_series x\nother_series 1\n{RAY_SERVE_LINE}\n".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/metrics"


def route_requests(model: str) -> dict[tuple[str, str], dict]:
    """One request per (method, path) of vLLM 0.16's app. A route missing here fails the test."""
    user = [{"role": "user", "content": "Hello there"}]
    return {
        ("GET", "/load"): {}, ("GET", "/version"): {},
        ("POST", "/scale_elastic_ep"): {"json": {"new_data_parallel_size": 2}},
        ("POST", "/is_scaling_elastic_ep"): {},
        ("POST", "/tokenize"): {"json": {"model": model, "prompt": "Hello there"}},
        ("POST", "/detokenize"): {"json": {"model": model, "tokens": [72, 101]}},
        ("POST", "/inference/v1/generate"): {"json": {"model": model, "token_ids": [72, 101, 108],
                                                      "sampling_params": {"max_tokens": 3}}},
        ("GET", "/metrics"): {}, ("GET", "/health"): {}, ("GET", "/v1/models"): {},
        ("GET", "/ping"): {}, ("POST", "/ping"): {},
        ("POST", "/invocations"): {"json": {"model": model, "messages": user, "max_tokens": 3}},
        ("POST", "/v1/chat/completions"): {"json": {"model": model, "messages": user, "max_tokens": 4}},
        ("POST", "/v1/chat/completions/render"): {"json": {"model": model, "messages": user}},
        ("POST", "/v1/responses"): {"json": {"model": model, "input": "Hello there", "max_output_tokens": 4}},
        ("GET", "/v1/responses/{response_id}"): {"path": "/v1/responses/resp_does_not_exist"},
        ("POST", "/v1/responses/{response_id}/cancel"): {"path": "/v1/responses/resp_does_not_exist/cancel"},
        ("POST", "/v1/completions"): {"json": {"model": model, "prompt": "Hello there", "max_tokens": 4}},
        ("POST", "/v1/completions/render"): {"json": {"model": model, "prompt": "Hello there"}},
        ("POST", "/v1/messages"): {"json": {"model": model, "messages": user, "max_tokens": 4}},
    }


def extra_requests(model: str, max_n: int) -> dict[str, dict]:
    user = [{"role": "user", "content": "Hello there"}]
    chat = {"model": model, "messages": user, "max_tokens": 4}
    completion = {"model": model, "prompt": "Hello there", "max_tokens": 4}
    noauth = {"auth": False}
    return {
        "chat-stream": {"method": "POST", "path": "/v1/chat/completions",
                        "json": {**chat, "stream": True, "stream_options": {"include_usage": True}}},
        "completion-stream": {"method": "POST", "path": "/v1/completions", "json": {**completion, "stream": True}},
        "chat-n-at-limit": {"method": "POST", "path": "/v1/chat/completions", "json": {**chat, "n": max_n}},
        "chat-n-above-limit": {"method": "POST", "path": "/v1/chat/completions", "json": {**chat, "n": max_n + 1}},
        "completion-n-above-limit": {"method": "POST", "path": "/v1/completions", "json": {**completion, "n": max_n + 1}},
        "completion-best-of-above-limit": {"method": "POST", "path": "/v1/completions",
                                           "json": {**completion, "best_of": max_n + 1}},
        "completion-n-above-limit-streamed-body": {"method": "POST", "path": "/v1/completions", "chunked": True,
                                                   "json": {**completion, "n": max_n + 1}},
        "chat-n-not-an-int": {"method": "POST", "path": "/v1/chat/completions", "json": {**chat, "n": "two"}},
        **{f"noauth {m} {p}": {"method": m, "path": p, **noauth, **({"json": chat} if m == "POST" else {})}
           for m, p in [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/invocations"),
                        ("POST", "/inference/v1/generate"), ("POST", "/tokenize"), ("POST", "/scale_elastic_ep"),
                        ("GET", "/openapi.json"), ("GET", "/version"),
                        ("GET", "/health"), ("GET", "/metrics"), ("GET", "/ping")]},
        "noauth n-above-limit": {"method": "POST", "path": "/v1/chat/completions", **noauth,
                                 "json": {**chat, "n": max_n + 1}},
    }


def auth_headers(auth) -> dict[str, str]:
    """The Authorization header of a hostile case's `auth` (tests/serving/hostile_cases.py)."""
    value = {True: f"Bearer {API_KEY}", "key": f"Bearer {API_KEY}", "previous": f"Bearer {ROTATING_KEY_OLD}",
             "lower-scheme": f"bearer {API_KEY}", "wrong": "Bearer not-the-key", "lower-scheme-wrong": "bearer nope",
             "basic": "Basic cm91dGU6dGVzdHM=", "empty": "Bearer ", "limited": f"Bearer {LIMITED_KEY}"}.get(auth)
    return {"authorization": value} if value else {}


def key_directory() -> str:
    """The mounted Secret's layout (config/secrets.py): a file per named key, holding its JSON."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="api-keys-"))
    (directory / "apps").write_text(json.dumps({"current": API_KEY}))
    (directory / "rotating").write_text(json.dumps({"current": ROTATING_KEY_NEW, "previous": ROTATING_KEY_OLD}))
    (directory / "limited").write_text(json.dumps({"current": LIMITED_KEY}))
    (directory / "broken").write_text("not json")  # logged, ignored: the other keys still work
    return str(directory)


async def _call(client, spec: dict) -> dict:
    headers = auth_headers(spec.get("auth", True))
    kwargs: dict = {"headers": headers}
    if "json" in spec:
        body = json.dumps(spec["json"]).encode()
        headers["content-type"] = "application/json"
        if spec.get("chunked"):
            async def chunks():  # the body arrives in several ASGI messages
                for i in range(0, len(body), 7):
                    yield body[i:i + 7]
            kwargs["content"] = chunks()
        else:
            kwargs["content"] = body
    elif "raw" in spec and spec["raw"] is not None:
        kwargs["content"] = spec["raw"]
        headers["content-type"] = "application/json"
    started = time.monotonic()
    resp = await client.request(spec["method"], spec["path"], **kwargs)
    text = resp.text
    try:
        body_json = resp.json()
    except ValueError:
        body_json = None
    return {"status": resp.status_code, "json": body_json, "text": text[:200_000], "headers": dict(resp.headers),
            "seconds": round(time.monotonic() - started, 3)}


async def main() -> dict:
    import httpx

    from serving import compat, middleware
    from serving.keys import KeyRing
    from serving.rate_limit import local_limiter
    from serving.settings import ServingSettings, local_cpu_args
    from tests.serving.hostile_cases import body_cases, limit_cases, route_cases
    from tests.serving.bad_requests import CASES, MODEL
    from tests.serving.vllm016.fake_engine import FakeEngineClientForRouteTests

    timings = {}
    started = time.monotonic()
    model_dir = tiny_model()
    timings["tiny_model_s"] = round(time.monotonic() - started, 1)
    settings = ServingSettings.from_args(local_cpu_args(str(model_dir), "tiny-llama3"))
    options = settings.engine_options()
    # As serving/app.py: vLLM's own serve namespace, then the engine config vLLM would build from it.
    args = compat.engine_namespace(options)
    compat.apply_device_env(options["device_env"])
    vllm_config = compat.resolve("AsyncEngineArgs").from_cli_args(args).create_engine_config()
    engine = FakeEngineClientForRouteTests(vllm_config)
    app = await compat.openai_app(engine, args)
    metrics_url = fake_ray_metrics_agent()
    rate_limits = {"limited": RATE_LIMIT}
    middleware.install(app, keys=KeyRing(key_directory()), limits=settings.limits, max_model_len=settings.max_model_len,
                       rate_limits=rate_limits, acquire=local_limiter(rate_limits), metrics_url=lambda: metrics_url)
    timings["app_built_s"] = round(time.monotonic() - started, 1)

    # Every (method, path) the app serves; a Mount (vLLM's prometheus app under /metrics) has no methods.
    routes = sorted({(m, r.path) for r in app.routes for m in (getattr(r, "methods", None) or {"MOUNT"})})
    name = settings.served_model_name
    table = route_requests(name)
    results: dict[str, dict] = {}
    # As uvicorn does, an exception in the app is a 500 to the client (not raised into the test).
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
        for (method, path), spec in table.items():
            results[f"{method} {path}"] = await _call(client, {"method": method, "path": spec.get("path", path), **spec})
        for case_id, spec in extra_requests(name, settings.max_num_seqs).items():
            results[case_id] = await _call(client, spec)
        for case_id, method, path, body, _status in CASES:
            spec: dict = {"method": method, "path": path}
            if isinstance(body, (bytes, bytearray)):
                spec["raw"] = bytes(body)
            elif body is not None:
                spec["json"] = json.loads(json.dumps(body).replace(json.dumps(MODEL)[1:-1], name))
            results[f"bad:{case_id}"] = await _call(client, spec)
        hostile = route_cases(name) + limit_cases(name, settings.limits) + body_cases(name, settings.limits)
        for case_id, method, path, auth, body, _status, _param in hostile:
            spec = {"method": method, "path": path, "auth": auth}
            spec.update({"raw": body} if isinstance(body, bytes) else {"json": body} if body is not None else {})
            results[f"hostile:{case_id}"] = await _call(client, spec)
        for i in range(RATE_LIMIT + 1):
            results[f"rate-limited {i}"] = await _call(client, {"method": "GET", "path": "/v1/models", "auth": "limited"})
        results["rate-limited other key"] = await _call(client, {"method": "GET", "path": "/v1/models"})
        engine.die()
        results["dead-engine /health"] = await _call(client, {"method": "GET", "path": "/health"})
    timings["total_s"] = round(time.monotonic() - started, 1)
    import inspect

    signatures = {sym: list(inspect.signature(compat.resolve(sym)).parameters) for sym in compat.SYMBOLS}
    cpu_ns = compat.engine_namespace(ServingSettings.from_args(local_cpu_args("/m", "m")).engine_options())
    return {"vllm_version": compat.vllm_version(), "signatures": signatures,
            "args": [cpu_ns.enable_auto_tool_choice, cpu_ns.tool_call_parser, cpu_ns.max_num_seqs, cpu_ns.api_key], "routes": routes, "table": sorted(f"{m} {p}" for m, p in table),
            "results": results, "seen": engine.seen, "max_n": settings.max_num_seqs, "model": name,
            "limits": settings.limits.to_args(), "max_model_len": settings.max_model_len, "rate_limit": RATE_LIMIT,
            "timings": timings}


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    print(json.dumps(asyncio.run(main())))
