"""A hostile client's requests, shared by the real local server tests (vLLM 0.32, test_hostile.py)
and the vLLM 0.16 route driver (tests/serving/vllm016/driver.py): the same cases on both versions.

Each case is (case_id, method, path, auth, body, expected status (or a tuple of allowed ones),
expected param). `auth` is "key"
(a valid key), "none", "wrong", "lower-scheme" ("bearer <key>"), "basic" or "previous" (the rotated
key of a named key, valid until dropped). Pure data: no HTTP client here.
"""

from __future__ import annotations

import json

from config.request_limits import RequestLimits

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
USER = [{"role": "user", "content": "Hello"}]

# Every route vLLM 0.16 or 0.32 has that this platform does not serve, and path tricks that must
# not reach a route around the key check or the route list.
BLOCKED = [
    ("POST", "/invocations"), ("POST", "/inference/v1/generate"), ("POST", "/v1/responses"),
    ("POST", "/v1/messages"), ("POST", "/v1/chat/completions/render"), ("POST", "/v1/completions/render"),
    ("POST", "/scale_elastic_ep"), ("POST", "/is_scaling_elastic_ep"), ("GET", "/load"), ("GET", "/ping"),
    ("POST", "/ping"), ("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json"), ("GET", "/server_info"),
    ("POST", "/reset_prefix_cache"), ("POST", "/v1/load_lora_adapter"), ("POST", "/v1/embeddings"),
    ("POST", "/pooling"), ("POST", "/v1/audio/transcriptions"),
    # Path tricks: an extra slash, case, a trailing slash.
    ("POST", "//v1/chat/completions"), ("POST", "/V1/chat/completions"), ("POST", "/v1/chat/completions/"),
    ("GET", "/v1/models/"), ("GET", "/HEALTH"), ("GET", "/health/"),
]
# Tricks a client library may normalize before sending (dot segments) or that decode to a served
# path (an encoded slash: the ASGI path is decoded, and the route list and the router both see the
# decoded one). Without a key they are 401 like everything else; with one, either a 404 or the route
# they normalize to (the same route with the same checks), never anything else.
NORMALIZING = [
    ("POST", "/health/../v1/chat/completions"), ("POST", "/v1/./chat/completions"), ("GET", "/health/../v1/models"),
    ("POST", "/v1%2Fchat%2Fcompletions"), ("GET", "/health%2F..%2Fv1%2Fmodels"),
]
SERVED = [("GET", "/v1/models", None), ("POST", CHAT, {"messages": USER, "max_tokens": 2}),
          ("POST", COMPLETIONS, {"prompt": "Hello", "max_tokens": 2}), ("POST", "/tokenize", {"prompt": "Hello"}),
          ("POST", "/detokenize", {"tokens": [1, 2]}), ("GET", "/version", None), ("GET", "/metrics", None)]


def route_cases(model: str) -> list[tuple]:
    """Every route and trick without a key, with a wrong key and with a valid one."""
    cases = []
    for method, path in BLOCKED:
        body = {"model": model, "messages": USER, "max_tokens": 2} if method == "POST" else None
        for auth in ("none", "wrong"):
            cases.append((f"{auth} {method} {path}", method, path, auth, body, 401, None))
        cases.append((f"key {method} {path}", method, path, "key", body, 404, None))
    for method, path in NORMALIZING:
        body = {"model": model, "messages": USER, "max_tokens": 2} if method == "POST" else None
        for auth in ("none", "wrong"):
            cases.append((f"{auth} {method} {path}", method, path, auth, body, 401, None))
        cases.append((f"key {method} {path}", method, path, "key", body, (200, 404), None))
    for method, path, body in SERVED:
        body = {"model": model, **body} if body else None
        for auth in ("none", "wrong", "lower-scheme-wrong", "basic", "empty"):
            cases.append((f"{auth} {method} {path}", method, path, auth, body, 401, None))
        cases.append((f"key {method} {path}", method, path, "key", body, 200, None))
    cases.append(("none GET /health", "GET", "/health", "none", None, 200, None))
    cases.append(("lower-scheme GET /v1/models", "GET", "/v1/models", "lower-scheme", None, 200, None))
    cases.append(("previous GET /v1/models", "GET", "/v1/models", "previous", None, 200, None))
    cases.append(("wrong-method GET chat", "GET", CHAT, "key", None, 405, None))
    # CORS preflight from a browser origin: no key, so nothing (no origin is allowed anyway).
    cases.append(("none OPTIONS chat", "OPTIONS", CHAT, "none", None, 401, None))
    return cases


def limit_cases(model: str, limits: RequestLimits, *, at_limit: bool = True) -> list[tuple]:
    """Each per-request limit just over (400 naming the parameter) and, with `at_limit`, just at it.
    At the limit, every case asks for 1-2 tokens so the real engine answers in moments."""
    chat = {"model": model, "messages": USER, "max_tokens": 1}
    completion = {"model": model, "prompt": "Hello", "max_tokens": 1}
    L = limits
    over = [
        ("n", CHAT, {**chat, "n": L.max_sequences + 1}),
        ("n", COMPLETIONS, {**completion, "n": L.max_sequences + 1}),
        ("best_of", COMPLETIONS, {**completion, "best_of": L.max_sequences + 1}),
        ("prompt", COMPLETIONS, {**completion, "prompt": ["Hi"] * (L.max_prompts + 1)}),
        ("n", COMPLETIONS, {**completion, "prompt": ["Hi"] * 2, "n": L.max_sequences // 2 + 1}),
        ("max_tokens", CHAT, {**chat, "max_tokens": L.max_max_tokens + 1}),
        ("max_completion_tokens", CHAT, {**chat, "max_tokens": None, "max_completion_tokens": L.max_max_tokens + 1}),
        ("max_tokens", COMPLETIONS, {**completion, "max_tokens": L.max_max_tokens + 1}),
        ("min_tokens", CHAT, {**chat, "min_tokens": L.max_max_tokens + 1}),
        ("stop", CHAT, {**chat, "stop": [f"s{i}" for i in range(L.max_stop + 1)]}),
        ("stop_token_ids", CHAT, {**chat, "stop_token_ids": list(range(3, 4 + L.max_stop))}),
        ("logit_bias", CHAT, {**chat, "logit_bias": {str(i): 1 for i in range(L.max_logit_bias + 1)}}),
        ("messages", CHAT, {**chat, "messages": USER * (L.max_messages + 1)}),
        ("top_logprobs", CHAT, {**chat, "logprobs": True, "top_logprobs": L.max_top_logprobs + 1}),
        ("logprobs", COMPLETIONS, {**completion, "logprobs": L.max_top_logprobs + 1}),
    ]
    cases = [(f"over {param} {path}", "POST", path, "key", body, 400, param) for param, path, body in over]
    if at_limit:
        at = [
            ("n", CHAT, {**chat, "n": L.max_sequences}),
            ("prompt", COMPLETIONS, {**completion, "prompt": ["Hi"] * L.max_prompts}),
            ("stop", CHAT, {**chat, "stop": [f"s{i}" for i in range(L.max_stop)]}),
            ("logit_bias", CHAT, {**chat, "logit_bias": {str(i): 1 for i in range(L.max_logit_bias)}}),
            ("top_logprobs", CHAT, {**chat, "logprobs": True, "top_logprobs": L.max_top_logprobs}),
        ]
        cases += [(f"at {param} {path}", "POST", path, "key", body, 200, None) for param, path, body in at]
    return cases


def body_cases(model: str, limits: RequestLimits) -> list[tuple]:
    """Bodies just under and just over max_body_bytes (the padding is a JSON field vLLM ignores)."""
    def padded(size: int) -> bytes:
        base = {"model": model, "prompt": "Hello", "max_tokens": 1, "user": ""}
        empty = len(_json(base))
        return _json({**base, "user": "x" * (size - empty)})
    return [
        ("body at limit", "POST", COMPLETIONS, "key", padded(limits.max_body_bytes), 200, None),
        ("body over limit", "POST", COMPLETIONS, "key", padded(limits.max_body_bytes + 1), 413, None),
    ]


def _json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
