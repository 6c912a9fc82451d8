"""Scale-out and scale-in in local mode (issue 12): with up to 2 replicas, a load ramp makes Ray Serve
add the second replica and traffic reach it, the load's end brings it back to one, and no request fails.

The facts are Ray Serve's own: the replica timeline from its controller's log, and which replica
served each request, and when it finished, from the replicas' access logs, matched to the client's
requests by the request id each one sends (x-request-id).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import requests

from serving.deployment import app_args, local_cpu_row
from serving.settings import ServingSettings
from serving.local.serve import _instance_processes, stop_instance_leftovers
from tests.support.local_server import LOCAL_MAX_TOKENS, engine_core_pids, start_local_server

pytestmark = pytest.mark.serving

MAX_REPLICAS = 2
# One replica's autoscaling target is its engine batch (serving/deployment.py). The ramp holds twice
# that in flight, so Serve wants two replicas; the trickle stays below it, so Serve wants one, with
# as many streams as that allows, so the replica Serve removes still holds some (HAProxy's
# leastconn has given it a quarter of them, not half).
TARGET = ServingSettings.from_args(app_args(local_cpu_row("m", "m", max_replicas=MAX_REPLICAS))).max_num_seqs
RAMP, TRICKLE = 2 * TARGET, 3 * TARGET // 4
# Up to the longest answer local mode allows: a stream stays in flight for seconds, so the ramp's
# load is sustained and the trickle still has streams on the replica Serve removes. Lengths vary
# (between half and all of it) so that streams do not all end, and restart, together.
TOKENS = LOCAL_MAX_TOKENS
# A replica starts in about 30 s on an idle 2-core machine, 40-80 s under the ramp.
SCALE_OUT_TIMEOUT_S = 180
# The ramp's streams end, then the CPU pace's look-back and downscale delay, then the drain.
SCALE_IN_TIMEOUT_S = 150
# The server's replicas write each access log line at once (Ray Serve's throughput mode buffers
# 1000), and keep their Ray Serve log handlers: vLLM's logging setup, run when the replica imports
# vLLM, closes every handler already installed (logging.config.dictConfig), Ray Serve's included.
ACCESS_LOGS = {"RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1", "VLLM_CONFIGURE_LOGGING": "0"}

_CONTROLLER_LINE = re.compile(r"^\w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) controller \d+ -- (.*)$")
_REPLICA_ID = re.compile(r"Replica\(id='(\w+)'")
_ACCESS_LINE = re.compile(r"^\w+ (\S+ \S+) \S+ (\w+) (\S+) -- POST /v1/chat/completions (\d+) ")


def _time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # Ray logs local time


def stream_chat(endpoint, request_id: str, max_tokens: int) -> tuple[int, int]:
    """One streamed chat completion: (status, completion tokens of a complete stream). The stream is
    read in large pieces and split once: parsing it line by line (tests/serving/test_load.py) made a
    few dozen streams CPU-bound in this client on 2 cores, and the replicas saw 2 of 12 of them."""
    with requests.post(f"{endpoint.base_url}/chat/completions", stream=True, timeout=300,
                       headers={**endpoint.headers, "x-request-id": request_id}, json={
            "model": endpoint.model, "messages": [{"role": "user", "content": request_id}], "max_tokens": max_tokens,
            "temperature": 0, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}) as resp:
        if resp.status_code != 200:
            return resp.status_code, 0
        body = b"".join(resp.iter_content(chunk_size=1 << 16)).decode()
    events = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
    return 200, json.loads(events[-2])["usage"]["completion_tokens"] if events[-1] == "[DONE]" else 0


@dataclass
class Request:
    id: str
    start: float
    max_tokens: int
    end: float = 0.0
    status: int = 0
    tokens: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.tokens == self.max_tokens


class Load:
    """Streaming chat requests from RAMP threads, of which the first `concurrency` run at a time."""

    def __init__(self, endpoint) -> None:
        self.endpoint, self.concurrency, self.done = endpoint, 0, threading.Event()
        self.requests: list[Request] = []
        self._ids = itertools.count()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(RAMP)]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int) -> None:
        while not self.done.is_set():
            if index >= self.concurrency:
                time.sleep(0.1)
                continue
            n = next(self._ids)
            request = Request(f"scale-{n}", time.time(), TOKENS - n * 97 % (TOKENS // 2))
            self.requests.append(request)
            try:
                request.status, request.tokens = stream_chat(self.endpoint, request.id, request.max_tokens)
            except Exception as exc:  # noqa: BLE001 - a broken stream is a failed request, reported below
                request.error = f"{type(exc).__name__}: {exc}"
            request.end = time.time()

    def stop(self) -> None:
        self.done.set()
        for thread in self._threads:
            thread.join(timeout=300)

    def failed(self) -> list[Request]:
        """Requests that did not end in a complete stream (once stopped, unfinished ones too)."""
        return [r for r in self.requests if not r.ok and (r.end or self.done.is_set())]


_EVENTS = (("started successfully", "started"), ("Stopping Replica", "stopping"), ("is stopped", "stopped"))


def replica_events(session: Path) -> list[tuple[float, str, str, int]]:
    """(time, replica id, "started" | "stopping" | "stopped", replicas running after it) as the Serve
    controller logs them, oldest first: a replica runs from "started" until Serve begins to stop it."""
    started, running, events = set(), set(), []
    for log in sorted(session.glob("logs/serve/controller_*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if not (match := _CONTROLLER_LINE.match(line)) or not (replica := _REPLICA_ID.search(match[2])):
                continue
            event = next((event for text, event in _EVENTS if text in match[2]), None)
            if event == "started":
                started.add(replica[1])
                running.add(replica[1])
            elif event and replica[1] in started:  # one Serve stops while still starting never ran
                running.discard(replica[1])
            else:
                continue
            events.append((_time(match[1]), replica[1], event, len(running)))
    return events


def served(session: Path) -> dict[str, dict[str, tuple[float, int]]]:
    """replica id -> {request id: (time it finished, HTTP status)} from the replicas' access logs."""
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for log in session.glob("logs/serve/replica_*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if match := _ACCESS_LINE.match(line):
                out.setdefault(match[2], {})[match[3]] = (_time(match[1]), int(match[4]))
    return out


def engines(instance: int) -> list[int]:
    """The live vLLM EngineCore processes of local server `instance`."""
    return engine_core_pids(_instance_processes(instance))


def wait_for(condition, timeout_s: float, what: str, describe) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s:.0f} s; {describe()}")
        time.sleep(1)


def test_a_load_ramp_scales_out_to_a_second_replica_that_serves_and_its_end_scales_in_without_a_failed_request():
    started = time.monotonic()
    server = start_local_server(extra_args=("--max-replicas", str(MAX_REPLICAS)), extra_env=ACCESS_LOGS)
    # Ray names the session after the process that started it: the local server.
    session = next(Path(os.environ.get("RAY_TMPDIR", "/tmp"), "ray").glob(f"session_*_{server.proc.pid}"))
    load = Load(server)

    def describe() -> str:
        return (f"replica events (time, id, event, running): {replica_events(session)}; requests per replica: "
                f"{ {r: len(ids) for r, ids in served(session).items()} }; {len(load.requests)} requests, "
                f"failed: {load.failed()[:5]}")

    try:
        ready_s = time.monotonic() - started
        load.concurrency = RAMP
        wait_for(lambda: any(n == 2 for *_, n in replica_events(session)), SCALE_OUT_TIMEOUT_S,
                 f"Ray Serve started no second replica under {RAMP} concurrent streams", describe)
        scaled_out_s = time.monotonic() - started
        wait_for(lambda: len(served(session)) == 2, 60, "the second replica served no request", describe)
        load.concurrency = TRICKLE
        wait_for(lambda: any(e == "stopped" for _, _, e, _ in replica_events(session)), SCALE_IN_TIMEOUT_S,
                 f"Ray Serve did not scale back to one replica under {TRICKLE} streams", describe)
        # In a cluster the worker pod outlives a removed replica: an engine left behind would keep its
        # NeuronCores and fail the next replica placed on that pod. One engine, the remaining replica's.
        wait_for(lambda: len(engines(server.proc.pid)) == 1, 30,
                 "the removed replica's vLLM engine outlived it", lambda: f"engines {engines(server.proc.pid)}; {describe()}")
        load.stop()
        # A replica writes a request's access line just after the response ends, so the client can
        # hold the last [DONE] a moment before the log does: give the logs a few seconds to catch up.
        ids = {r.id for r in load.requests}
        deadline = time.monotonic() + 15
        while not ids <= {rid for logged in served(session).values() for rid in logged} and time.monotonic() < deadline:
            time.sleep(0.5)
        events, by_replica = replica_events(session), served(session)  # before the server's own shutdown
    finally:
        load.stop()
        server.stop()
    # Nothing of the server outlives it: not the removed replica's engine, not the last one's.
    assert stop_instance_leftovers(server.proc.pid) == [], "processes of the stopped server were still alive"
    stop_at, removed = next((t, r) for t, r, e, _ in events if e == "stopping")
    # The removed replica's requests that finished after Serve began to stop it: in flight while removed.
    drained = [rid for rid, (finished, _) in by_replica.get(removed, {}).items() if finished > stop_at]
    print(f"\nready {ready_s:.0f} s, second replica running {scaled_out_s:.0f} s, total {time.monotonic() - started:.0f} s"
          f"\nreplica events (s, id, event, running): {[(round(t - events[0][0]), *rest) for t, *rest in events]}"
          f"\nrequests per replica: { {r: len(ids) for r, ids in by_replica.items()} }; {len(load.requests)} requests, "
          f"{len(load.failed())} failed; {len(drained)} finished on {removed} while Serve removed it")
    assert [n for _, _, e, n in events if e != "stopped"] == [1, 2, 1], describe()
    assert not load.failed(), describe()
    logged = {rid: status for ids in by_replica.values() for rid, (_, status) in ids.items()}
    assert logged == {r.id: 200 for r in load.requests}, "the replicas' access logs and the client disagree"
    assert drained, f"no request was in flight on {removed} while Serve removed it"
