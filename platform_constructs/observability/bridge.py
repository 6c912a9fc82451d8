"""Serving metrics bridge: Ray Serve / vLLM Prometheus metrics -> CloudWatch EMF (with percentiles).

Why: the CloudWatch agent's Prometheus support drops histogram metrics (it handles counters, gauges
and summaries only), and TTFT / inter-token latency are histograms in vLLM. This sidecar scrapes the
Ray pods' metrics port, aggregates across pods, and sends Embedded Metric Format events to the
CloudWatch agent in the same pod (TCP 127.0.0.1:25888). Histograms become CloudWatch value/count
distributions, so CloudWatch itself computes p50/p95/p99 over any period.

Metric names are normalised (Ray prefixes `ray_`, vLLM uses `vllm:`; releases differ): see SERIES.
Standard library only: it runs from a ConfigMap in a plain python image.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import ssl
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

# CloudWatch metric name -> (kind, accepted normalised Prometheus names, unit, scale)
HISTOGRAMS = {
    "TimeToFirstToken": (("vllm_time_to_first_token_seconds",), "Milliseconds", 1000.0),
    "InterTokenLatency": (("vllm_inter_token_latency_seconds", "vllm_time_per_output_token_seconds"),
                          "Milliseconds", 1000.0),
    "EndToEndLatency": (("vllm_e2e_request_latency_seconds",), "Milliseconds", 1000.0),
}
GAUGES = {
    "RequestsRunning": ("vllm_num_requests_running",),
    "RequestsWaiting": ("vllm_num_requests_waiting",),
    "HealthyReplicas": ("serve_deployment_replica_healthy",),
}
RATES = {  # counters reported as a per-second rate over the interval
    "OutputTokensPerSecond": ("vllm_generation_tokens", "vllm_generation_tokens_total"),
    "PromptTokensPerSecond": ("vllm_prompt_tokens", "vllm_prompt_tokens_total"),
}
MAX_DISTINCT_VALUES = 100  # CloudWatch's limit of distinct values in one value/count datapoint

_LINE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)(?:\s+\S+)?$')
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def normalise(name: str) -> str:
    """`ray_vllm:time_to_first_token_seconds` -> `vllm_time_to_first_token_seconds`."""
    name = name.replace(":", "_")
    return name[4:] if name.startswith("ray_") else name


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(m.group(3) or "")}
        samples.append(Sample(normalise(m.group(1)), labels, value))
    return samples


@dataclass
class Snapshot:
    """One scrape of all pods, summed across pods: cumulative buckets/counters and current gauges."""
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)  # metric -> le -> cumulative count
    sums: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)


def snapshot(texts: list[str]) -> Snapshot:
    snap = Snapshot()
    for text in texts:
        for s in parse(text):
            for metric, (names, _unit, _scale) in HISTOGRAMS.items():
                for n in names:
                    if s.name == f"{n}_bucket" and "le" in s.labels:
                        le = math.inf if s.labels["le"] in ("+Inf", "Inf") else float(s.labels["le"])
                        b = snap.buckets.setdefault(metric, {})
                        b[le] = b.get(le, 0.0) + s.value
                    elif s.name == f"{n}_sum":
                        snap.sums[metric] = snap.sums.get(metric, 0.0) + s.value
            for metric, names in GAUGES.items():
                if s.name in names:
                    snap.gauges[metric] = snap.gauges.get(metric, 0.0) + s.value
            for metric, names in RATES.items():
                if s.name in names:
                    snap.counters[metric] = snap.counters.get(metric, 0.0) + s.value
    for metric in GAUGES:
        snap.gauges.setdefault(metric, 0.0)  # no pod, no replica: 0, which is what the alarm needs to see
    return snap


def distribution(prev: dict[float, float] | None, cur: dict[float, float], scale: float,
                 delta_sum: float | None) -> dict | None:
    """Per-interval value/count distribution from two cumulative bucket snapshots (reset-safe)."""
    bounds = sorted(cur)
    if prev and any(cur[le] < prev.get(le, 0.0) for le in bounds):
        prev = None  # a pod restarted (counter reset): count the current values as this interval's
    values, counts = [], []
    lower, cum_prev = 0.0, 0.0
    for le in bounds:
        cum = cur[le] - (prev.get(le, 0.0) if prev else 0.0)
        n = cum - cum_prev
        cum_prev = cum
        if n > 0:
            rep = lower if math.isinf(le) else (lower + le) / 2.0
            values.append(round(rep * scale, 3))
            counts.append(n)
        if not math.isinf(le):
            lower = le
    if not counts:
        return None
    if len(values) > MAX_DISTINCT_VALUES:
        values, counts = values[:MAX_DISTINCT_VALUES], counts[:MAX_DISTINCT_VALUES]
    total = sum(counts)
    return {
        "Values": values, "Counts": counts, "Min": min(values), "Max": max(values), "Count": total,
        "Sum": round(delta_sum * scale, 3) if delta_sum is not None and delta_sum >= 0
        else round(sum(v * c for v, c in zip(values, counts)), 3),
    }


def emf_event(*, prev: Snapshot | None, cur: Snapshot, seconds: float, namespace: str, cluster: str,
              log_group: str, now_ms: int) -> dict:
    """One EMF event with every metric of this interval, dimension ClusterName."""
    metrics, values = [], {}
    for metric, (_names, unit, scale) in HISTOGRAMS.items():
        if metric not in cur.buckets:
            continue
        prev_b = prev.buckets.get(metric) if prev else None
        delta_sum = cur.sums.get(metric, 0.0) - (prev.sums.get(metric, 0.0) if prev else 0.0) if metric in cur.sums else None
        dist = distribution(prev_b, cur.buckets[metric], scale, delta_sum)
        if dist:
            metrics.append({"Name": metric, "Unit": unit})
            values[metric] = dist
    for metric, value in cur.gauges.items():
        metrics.append({"Name": metric, "Unit": "Count"})
        values[metric] = value
    if prev is not None and seconds > 0:
        for metric, value in cur.counters.items():
            before = prev.counters.get(metric)
            if before is None:
                continue
            delta = value - before if value >= before else value  # counter reset
            metrics.append({"Name": metric, "Unit": "Count/Second"})
            values[metric] = round(delta / seconds, 3)
    return {
        "_aws": {"Timestamp": now_ms, "LogGroupName": log_group,
                 "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["ClusterName"]], "Metrics": metrics}]},
        "ClusterName": cluster,
        **values,
    }


# --- runtime (in the pod) ---------------------------------------------------------------------------

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def list_pod_ips(namespace: str, selector: str) -> list[str]:
    token = open(f"{SA_DIR}/token").read().strip()
    ctx = ssl.create_default_context(cafile=f"{SA_DIR}/ca.crt")
    url = f"https://kubernetes.default.svc/api/v1/namespaces/{namespace}/pods?labelSelector={urllib.parse.quote(selector)}"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        pods = json.load(resp)["items"]
    return [p["status"]["podIP"] for p in pods if p.get("status", {}).get("phase") == "Running" and p["status"].get("podIP")]


def scrape(ip: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{ip}:{port}/metrics", timeout=10) as resp:
        return resp.read().decode(errors="replace")


def send(event: dict, host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall((json.dumps(event) + "\n").encode())


def main() -> int:  # pragma: no cover - exercised in the cluster
    env = os.environ
    interval = float(env.get("INTERVAL_SECONDS", "60"))
    prev, prev_t = None, None
    while True:
        started = time.time()
        try:
            texts = []
            for ip in list_pod_ips(env["POD_NAMESPACE"], env["POD_SELECTOR"]):
                try:
                    texts.append(scrape(ip, int(env["METRICS_PORT"])))
                except OSError as exc:
                    print(f"scrape {ip}: {exc}", file=sys.stderr)
            cur = snapshot(texts)
            event = emf_event(prev=prev, cur=cur, seconds=(started - prev_t) if prev_t else 0.0,
                              namespace=env["CW_NAMESPACE"], cluster=env["CLUSTER_NAME"],
                              log_group=env["LOG_GROUP"], now_ms=int(started * 1000))
            send(event, "127.0.0.1", int(env.get("EMF_PORT", "25888")))
            prev, prev_t = cur, started
        except Exception as exc:  # keep running; the alarm on missing replicas covers a silent bridge
            print(f"bridge cycle failed: {exc!r}", file=sys.stderr)
        time.sleep(max(1.0, interval - (time.time() - started)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
