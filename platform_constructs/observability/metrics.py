"""The CloudWatch metrics the dashboard and alarms read: one place for namespaces, names and dimensions.

Serving metrics come from the serving metrics bridge (bridge.py) in namespace SERVING_NAMESPACE;
Neuron and node metrics come from Container Insights (the amazon-cloudwatch-observability add-on
with accelerated-compute metrics, installed by the ClusterStack) in namespace ContainerInsights.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw

from config.project import SERVING_METRIC_NAMESPACE
from platform_constructs.observability import bridge

SERVING_NAMESPACE = SERVING_METRIC_NAMESPACE
CONTAINER_INSIGHTS_NAMESPACE = "ContainerInsights"

# Serving (bridge.py's names)
TTFT = "TimeToFirstToken"
INTER_TOKEN_LATENCY = "InterTokenLatency"
OUTPUT_TOKENS_PER_SECOND = "OutputTokensPerSecond"
REQUESTS_RUNNING = "RequestsRunning"
REQUESTS_WAITING = "RequestsWaiting"
HEALTHY_REPLICAS = "HealthyReplicas"
assert {TTFT, INTER_TOKEN_LATENCY} <= set(bridge.HISTOGRAMS)
assert {REQUESTS_RUNNING, REQUESTS_WAITING, HEALTHY_REPLICAS} <= set(bridge.GAUGES)
assert OUTPUT_TOKENS_PER_SECOND in bridge.RATES

# Container Insights (enhanced observability, accelerated compute)
NEURONCORE_UTILIZATION = "node_neuroncore_utilization"
NEURON_DEVICE_MEMORY = "node_neurondevice_runtime_memory_used_bytes"
NEURON_EXECUTION_ERRORS = "node_neuron_execution_errors_total"
NODE_COUNT = "cluster_node_count"


def serving(name: str, cluster_name: str, statistic: str = "Average", period: Duration = Duration.minutes(1),
            label: str | None = None) -> cw.Metric:
    return cw.Metric(namespace=SERVING_NAMESPACE, metric_name=name, dimensions_map={"ClusterName": cluster_name},
                     statistic=statistic, period=period, label=label)


def container_insights(name: str, cluster_name: str, statistic: str = "Average",
                       period: Duration = Duration.minutes(1), label: str | None = None) -> cw.Metric:
    return cw.Metric(namespace=CONTAINER_INSIGHTS_NAMESPACE, metric_name=name,
                     dimensions_map={"ClusterName": cluster_name}, statistic=statistic, period=period, label=label)
