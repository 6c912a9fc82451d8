"""Concurrency and overload: 16 concurrent streams all complete; a flood gets 503 + Retry-After, not a hang."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from serving.deployment import app_args, local_cpu_row
from serving.settings import ServingSettings
from tests.serving.conftest import assert_serving
from tests.support.local_server import LOCAL_MAX_TOKENS

pytestmark = pytest.mark.serving


def _stream(endpoint, prompt: str, max_tokens: int) -> tuple[int, str, int]:
    with requests.post(f"{endpoint.base_url}/chat/completions", headers=endpoint.headers, stream=True, timeout=300, json={
            "model": endpoint.model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}) as resp:
        if resp.status_code != 200:
            return resp.status_code, resp.headers.get("retry-after", ""), 0
        events = [l[6:] for l in resp.iter_lines(decode_unicode=True) if l and l.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return 200, "", json.loads(events[-2])["usage"]["completion_tokens"]


def test_16_concurrent_streams_all_complete_with_the_same_greedy_text(local_endpoint, http):
    prompts = [f"Question number {i % 4}" for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda p: _stream(local_endpoint, p, 64), prompts))
    assert [r[0] for r in results] == [200] * 16
    assert [r[2] for r in results] == [64] * 16
    assert_serving(local_endpoint, http)


def test_flood_beyond_the_queue_gets_503_with_retry_after(local_endpoint, http):
    # The local app admits max_ongoing_requests + max_queued_requests per replica (serving/deployment.py).
    # All requests start together (a barrier: starting threads one by one let early ones finish first on
    # a fast machine) and each holds its slot for the longest answer local mode allows, so that many
    # more than the admitted number are in flight at once even while the first batches finish (with
    # 600 tokens and 34 over, one full-suite run on 2 cores saw all 130 admitted).
    settings = ServingSettings.from_args(app_args(local_cpu_row("m", "m")))
    admitted = settings.max_ongoing_requests + settings.max_queued_requests
    flood, tokens = admitted + 64, LOCAL_MAX_TOKENS
    start = threading.Barrier(flood)

    def one(i: int):
        start.wait()
        return _stream(local_endpoint, f"flood {i}", tokens)

    with ThreadPoolExecutor(flood) as pool:
        results = list(pool.map(one, range(flood)))
    statuses = [r[0] for r in results]
    print(f"\nflood of {flood}: {Counter(statuses)}")
    rejected = [r for r in results if r[0] != 200]
    assert rejected, f"nothing was rejected: the queue is not bounded ({Counter(statuses)})"
    assert set(statuses) <= {200, 503}, Counter(statuses)
    assert all(r[1] and int(r[1]) >= 1 for r in rejected), "503 without Retry-After"
    assert all(r[2] == tokens for r in results if r[0] == 200)
    assert_serving(local_endpoint, http)
