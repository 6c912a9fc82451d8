"""The serving metrics bridge: Prometheus text from Ray/vLLM in, EMF with distributions out."""

from __future__ import annotations

import json
import math
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from platform_constructs.observability import bridge

# What a Ray worker pod exports on its metrics port: vLLM metrics through Ray (`ray_` prefix, `vllm:`).
POD_A_T0 = """
# HELP ray_vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE ray_vllm:time_to_first_token_seconds histogram
ray_vllm:time_to_first_token_seconds_bucket{model_name="m",le="0.1"} 2
ray_vllm:time_to_first_token_seconds_bucket{model_name="m",le="0.5"} 5
ray_vllm:time_to_first_token_seconds_bucket{model_name="m",le="1.0"} 6
ray_vllm:time_to_first_token_seconds_bucket{model_name="m",le="+Inf"} 6
ray_vllm:time_to_first_token_seconds_sum{model_name="m"} 1.2
ray_vllm:time_to_first_token_seconds_count{model_name="m"} 6
# TYPE ray_vllm:num_requests_running gauge
ray_vllm:num_requests_running{model_name="m"} 3
ray_vllm:num_requests_waiting{model_name="m"} 1
# TYPE ray_vllm:generation_tokens_total counter
ray_vllm:generation_tokens_total{model_name="m"} 1000
ray_serve_deployment_replica_healthy{application="llm",deployment="LLMServer",replica="r1"} 1
"""
POD_A_T1 = POD_A_T0.replace('le="0.1"} 2', 'le="0.1"} 4').replace('le="0.5"} 5', 'le="0.5"} 9') \
    .replace('le="1.0"} 6', 'le="1.0"} 11').replace('le="+Inf"} 6', 'le="+Inf"} 12') \
    .replace("_sum{model_name=\"m\"} 1.2", "_sum{model_name=\"m\"} 4.0") \
    .replace("generation_tokens_total{model_name=\"m\"} 1000", "generation_tokens_total{model_name=\"m\"} 7000")
# A second replica, vLLM's own names without Ray's prefix (another release's layout).
POD_B = """
vllm:num_requests_running{model_name="m"} 2
vllm:num_requests_waiting{model_name="m"} 4
serve_deployment_replica_healthy{application="llm",deployment="LLMServer",replica="r2"} 1
"""


def test_parse_normalises_names_and_labels():
    samples = bridge.parse(POD_A_T0)
    names = {s.name for s in samples}
    assert "vllm_time_to_first_token_seconds_bucket" in names
    assert "serve_deployment_replica_healthy" in names
    bucket = next(s for s in samples if s.name.endswith("_bucket") and s.labels["le"] == "0.5")
    assert bucket.value == 5 and bucket.labels["model_name"] == "m"


def test_gauges_are_summed_across_pods():
    snap = bridge.snapshot([POD_A_T0, POD_B])
    assert snap.gauges["RequestsRunning"] == 5
    assert snap.gauges["RequestsWaiting"] == 5
    assert snap.gauges["HealthyReplicas"] == 2


def test_no_pods_means_zero_replicas_not_silence():
    snap = bridge.snapshot([])
    assert snap.gauges == {"RequestsRunning": 0.0, "RequestsWaiting": 0.0, "HealthyReplicas": 0.0}


def test_interval_distribution_and_rate():
    prev, cur = bridge.snapshot([POD_A_T0]), bridge.snapshot([POD_A_T1])
    event = bridge.emf_event(prev=prev, cur=cur, seconds=60, namespace="NS", cluster="c1", log_group="/lg",
                             now_ms=1_700_000_000_000)
    ttft = event["TimeToFirstToken"]
    # Deltas per bucket: (0,0.1]: 2, (0.1,0.5]: 2, (0.5,1.0]: 1, (1.0,+Inf): 1 -> midpoints in ms.
    assert ttft["Values"] == [50.0, 300.0, 750.0, 1000.0]
    assert ttft["Counts"] == [2, 2, 1, 1]
    assert ttft["Count"] == 6 and ttft["Sum"] == pytest.approx(2800.0)
    assert event["OutputTokensPerSecond"] == pytest.approx(100.0)
    directive = event["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "NS" and directive["Dimensions"] == [["ClusterName"]]
    units = {d["Name"]: d["Unit"] for d in directive["Metrics"]}
    assert units["TimeToFirstToken"] == "Milliseconds" and units["OutputTokensPerSecond"] == "Count/Second"
    assert event["ClusterName"] == "c1" and event["_aws"]["LogGroupName"] == "/lg"


def test_first_scrape_has_no_rate_and_a_restarted_pod_is_not_negative():
    first = bridge.emf_event(prev=None, cur=bridge.snapshot([POD_A_T1]), seconds=0, namespace="NS", cluster="c",
                             log_group="/lg", now_ms=0)
    assert "OutputTokensPerSecond" not in first
    # The pod restarted between scrapes: counters went down. Count the new values, never negative ones.
    after_reset = bridge.emf_event(prev=bridge.snapshot([POD_A_T1]), cur=bridge.snapshot([POD_A_T0]), seconds=60,
                                   namespace="NS", cluster="c", log_group="/lg", now_ms=0)
    assert all(c > 0 for c in after_reset["TimeToFirstToken"]["Counts"])
    assert after_reset["OutputTokensPerSecond"] >= 0


def test_quiet_interval_emits_no_empty_distribution():
    snap = bridge.snapshot([POD_A_T0])
    event = bridge.emf_event(prev=snap, cur=snap, seconds=60, namespace="NS", cluster="c", log_group="/lg", now_ms=0)
    assert "TimeToFirstToken" not in event
    assert event["OutputTokensPerSecond"] == 0


def test_inf_bucket_only():
    dist = bridge.distribution(None, {1.0: 0.0, math.inf: 3.0}, 1000.0, None)
    assert dist["Values"] == [1000.0] and dist["Counts"] == [3.0]


def test_scrape_and_send_over_real_sockets():
    """scrape() reads a metrics endpoint over HTTP and send() delivers one EMF line over TCP."""

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = POD_A_T0.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http = HTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=http.handle_request, daemon=True).start()
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(1)
    received = []

    def accept():
        conn, _ = sink.accept()
        with conn:
            received.append(conn.makefile().readline())

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        text = bridge.scrape("127.0.0.1", http.server_address[1])
        event = bridge.emf_event(prev=None, cur=bridge.snapshot([text]), seconds=0, namespace="NS", cluster="c",
                                 log_group="/lg", now_ms=1)
        bridge.send(event, "127.0.0.1", sink.getsockname()[1])
        t.join(5)
    finally:
        http.server_close()
        sink.close()
    assert json.loads(received[0])["HealthyReplicas"] == 1
