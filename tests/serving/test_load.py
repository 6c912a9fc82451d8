"""Concurrency and overload: 16 concurrent streams all complete; a flood gets 503 + Retry-After, not a hang."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.deployment import app_args, local_cpu_row
from serving.settings import ServingSettings
from tests.serving.conftest import assert_serving, stream_chat
from tests.support.local_server import LOCAL_MAX_TOKENS

pytestmark = pytest.mark.serving


def test_16_concurrent_streams_all_complete_with_the_same_greedy_text(local_endpoint, http):
    prompts = [f"Question number {i % 4}" for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda p: stream_chat(local_endpoint, p, 64), prompts))
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
        return stream_chat(local_endpoint, f"flood {i}", tokens)

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
