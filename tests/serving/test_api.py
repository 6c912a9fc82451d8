"""The OpenAI API of the real app (Ray Serve + vLLM on the CPU): routes, exact greedy outputs, usage."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.serving.conftest import ROOT, SERVING_PYTHON, assert_serving
from tests.serving.bad_requests import WEATHER_TOOL

pytestmark = pytest.mark.serving

CHAT_MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is the weather in Paris?"}]
PROMPT = "The quick brown fox"


@pytest.fixture(scope="module")
def reference():
    """Greedy outputs of the same model from Hugging Face transformers (independent of vLLM)."""
    requests_ = [
        {"messages": CHAT_MESSAGES, "max_tokens": 24},
        {"prompt": PROMPT, "max_tokens": 16},
        {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER_TOOL], "max_tokens": 8},
        {"messages": [{"role": "user", "content": "Weather in Paris?"}], "max_tokens": 8},
    ]
    out = subprocess.run([str(SERVING_PYTHON), "-m", "tests.serving.hf_reference"], input=json.dumps(requests_),
                         capture_output=True, text=True, cwd=ROOT, timeout=300, check=True)
    return json.loads(out.stdout)


def sse_events(resp) -> list:
    events = [line[len("data: "):] for line in resp.iter_lines(decode_unicode=True) if line and line.startswith("data: ")]
    assert events and events[-1] == "[DONE]", f"stream must end with [DONE], got {events[-1:]}"
    return [json.loads(e) for e in events[:-1]]


def test_models_lists_the_served_model(local_endpoint, http):
    resp = http.get(f"{local_endpoint.base_url}/models", headers=local_endpoint.headers, timeout=30)
    assert resp.status_code == 200
    assert [m["id"] for m in resp.json()["data"]] == [local_endpoint.model] == ["tiny-llama3"]


def test_health_is_ready(local_endpoint, http):
    assert http.get(f"{local_endpoint.root_url}/health", timeout=30).status_code == 200


def test_chat_greedy_output_and_usage_match_reference(local_endpoint, http, reference):
    ref = reference[0]
    resp = http.post(f"{local_endpoint.base_url}/chat/completions", headers=local_endpoint.headers, timeout=120, json={
        "model": local_endpoint.model, "messages": CHAT_MESSAGES, "max_tokens": 24, "temperature": 0, "ignore_eos": True})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == local_endpoint.model
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"] == ref["text"]
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {**body["usage"], "prompt_tokens": ref["prompt_tokens"], "completion_tokens": 24,
                             "total_tokens": ref["prompt_tokens"] + 24}


def test_completion_greedy_output_and_usage_match_reference(local_endpoint, http, reference):
    ref = reference[1]
    resp = http.post(f"{local_endpoint.base_url}/completions", headers=local_endpoint.headers, timeout=120, json={
        "model": local_endpoint.model, "prompt": PROMPT, "max_tokens": 16, "temperature": 0, "ignore_eos": True})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["choices"][0]["text"] == ref["text"]
    assert body["usage"]["prompt_tokens"] == ref["prompt_tokens"]
    assert body["usage"]["completion_tokens"] == 16
    assert body["usage"]["total_tokens"] == ref["prompt_tokens"] + 16


def test_chat_stream_matches_non_streamed_and_reports_usage(local_endpoint, http, reference):
    ref = reference[0]
    resp = http.post(f"{local_endpoint.base_url}/chat/completions", headers=local_endpoint.headers, timeout=120, stream=True, json={
        "model": local_endpoint.model, "messages": CHAT_MESSAGES, "max_tokens": 24, "temperature": 0, "ignore_eos": True,
        "stream": True, "stream_options": {"include_usage": True}})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    chunks = sse_events(resp)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == ref["text"]
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 1, "not streamed"
    usage = chunks[-1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (ref["prompt_tokens"], 24)


def test_completion_stream_matches_reference(local_endpoint, http, reference):
    ref = reference[1]
    resp = http.post(f"{local_endpoint.base_url}/completions", headers=local_endpoint.headers, timeout=120, stream=True, json={
        "model": local_endpoint.model, "prompt": PROMPT, "max_tokens": 16, "temperature": 0, "ignore_eos": True,
        "stream": True, "stream_options": {"include_usage": True}})
    chunks = sse_events(resp)
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == ref["text"]
    assert chunks[-1]["usage"]["completion_tokens"] == 16


def test_chat_with_tools_and_auto_tool_choice_is_served(local_endpoint, http, reference):
    """What Open WebUI sends with every chat: vLLM would answer 400 without auto tool choice + parser."""
    with_tools, without_tools = reference[2], reference[3]
    resp = http.post(f"{local_endpoint.base_url}/chat/completions", headers=local_endpoint.headers, timeout=120, json={
        "model": local_endpoint.model, "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER_TOOL],
        "tool_choice": "auto", "max_tokens": 8, "temperature": 0, "ignore_eos": True})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # The tools were rendered into the prompt by the model's chat template (same count as transformers).
    assert body["usage"]["prompt_tokens"] == with_tools["prompt_tokens"] > without_tools["prompt_tokens"]
    message = body["choices"][0]["message"]
    # The random tiny model writes no JSON call, so the llama3_json parser returns it as plain content.
    assert message["content"] == with_tools["text"] and not message.get("tool_calls")


def test_tool_call_history_round_trip_is_accepted(local_endpoint, http):
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 24 C"},
    ]
    resp = http.post(f"{local_endpoint.base_url}/chat/completions", headers=local_endpoint.headers, timeout=120, json={
        "model": local_endpoint.model, "messages": messages, "tools": [WEATHER_TOOL], "max_tokens": 4, "temperature": 0})
    assert resp.status_code == 200, resp.text


def test_repeated_greedy_requests_are_identical(local_endpoint, http):
    def once():
        return http.post(f"{local_endpoint.base_url}/completions", headers=local_endpoint.headers, timeout=60, json={
            "model": local_endpoint.model, "prompt": "Kubernetes", "max_tokens": 12, "temperature": 0}).json()["choices"][0]["text"]
    first = once()
    assert first.strip() and first == once()


def test_metrics_expose_vllm_and_ray_serve_series(local_endpoint, http):
    assert_serving(local_endpoint, http)
    text = http.get(f"{local_endpoint.root_url}/metrics", timeout=30).text
    assert "vllm:generation_tokens_total" in text or "vllm:generation_tokens" in text
    assert "vllm:time_to_first_token_seconds" in text
    assert any(line.startswith("ray_serve_") for line in text.splitlines()), "no Ray Serve series on /metrics"
