"""Neuron Helm chart: the device plugin (advertises aws.amazon.com/neuron and neuroncore) and the
Neuron scheduler extension with its second kube-scheduler, named NEURON_SCHEDULER_NAME, which packs
NeuronCores contiguously (the RayService workers set schedulerName to it)."""

from __future__ import annotations

from aws_cdk import Duration, aws_eks_v2 as eks
from constructs import Construct

from config.names import NEURON_NAMESPACE, NEURON_SCHEDULER_NAME
from config.versions import NEURON_CHART_REPO, NEURON_CHART_VERSION


def neuron_values(core_node_selector: dict[str, str]) -> dict:
    return {
        "devicePlugin": {"enabled": True},
        "scheduler": {
            "enabled": True,
            # The chart's default selector targets control-plane nodes, which EKS does not expose.
            "nodeSelector": core_node_selector,
            "customScheduler": {"fullnameOverride": NEURON_SCHEDULER_NAME, "nodeSelector": core_node_selector},
        },
        # Node problem detector marks nodes with Neuron hardware errors; recovery stays off (it
        # would terminate instances outside Karpenter's view).
        "npd": {"enabled": True, "nodeRecovery": {"enabled": False}},
    }


class NeuronChart(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, core_node_selector: dict[str, str]) -> None:
        super().__init__(scope, id)
        self.values = neuron_values(core_node_selector)
        self.chart = eks.HelmChart(
            self, "Chart", cluster=cluster, chart="neuron-helm-chart", repository=NEURON_CHART_REPO,
            version=NEURON_CHART_VERSION, namespace=NEURON_NAMESPACE, release="neuron",
            values=self.values, wait=True, timeout=Duration.minutes(10),
        )
