"""Neuron Helm chart: the device plugin (advertises aws.amazon.com/neuron and neuroncore) and the
Neuron scheduler extension with its second kube-scheduler, named NEURON_SCHEDULER_NAME, which packs
NeuronCores contiguously (the RayService workers set schedulerName to it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from aws_cdk import Duration, aws_eks_v2 as eks
from constructs import Construct

from config.names import CORE_NODE_ROLE, NEURON_NAMESPACE, NEURON_SCHEDULER_NAME, NODE_ROLE_LABEL
from config.versions import (
    NEURON_CHART_REPO, NEURON_CHART_VERSION, NEURON_KUBE_SCHEDULER_REPOSITORY, NEURON_KUBE_SCHEDULER_TAGS,
)
from platform_constructs.addons.helm_addon import HelmAddOnProps, helm_chart


@dataclass(frozen=True, kw_only=True)
class NeuronProps(HelmAddOnProps):
    chart: str = "neuron-helm-chart"
    repository: str = NEURON_CHART_REPO
    version: str = NEURON_CHART_VERSION
    namespace: str = NEURON_NAMESPACE
    release: str = "neuron"
    # Where the scheduler extension and its kube-scheduler run (the chart's default: control-plane nodes).
    node_selector: Mapping[str, str] = field(default_factory=lambda: {NODE_ROLE_LABEL: CORE_NODE_ROLE})
    # The cluster's Kubernetes version (picks the kube-scheduler image); None: read from the cluster.
    kubernetes_version: str | None = None


def kube_scheduler_image(kubernetes_version: str) -> dict[str, str]:
    """The second kube-scheduler's image for the cluster's minor (config/versions.py explains why)."""
    if kubernetes_version not in NEURON_KUBE_SCHEDULER_TAGS:
        raise ValueError(f"kubernetes_version: no Neuron kube-scheduler image pinned for {kubernetes_version!r}; "
                         f"pinned: {sorted(NEURON_KUBE_SCHEDULER_TAGS)} (config/versions.py)")
    return {"repository": NEURON_KUBE_SCHEDULER_REPOSITORY, "tag": NEURON_KUBE_SCHEDULER_TAGS[kubernetes_version]}


def neuron_values(core_node_selector: Mapping[str, str], kubernetes_version: str) -> dict:
    return {
        "devicePlugin": {"enabled": True},
        "scheduler": {
            "enabled": True,
            # The chart's default selector targets control-plane nodes, which EKS does not expose.
            "nodeSelector": core_node_selector,
            # Chart 1.9.0 values key scheduler.customScheduler.image (aws-neuron/neuron-helm-charts
            # charts/neuron-helm-chart/values.yaml; templates/scheduler/scheduler-custom-deployment.yaml
            # renders it as the `kube-second-scheduler` container).
            "customScheduler": {"fullnameOverride": NEURON_SCHEDULER_NAME, "nodeSelector": core_node_selector,
                                "image": kube_scheduler_image(kubernetes_version)},
        },
        # Node problem detector marks nodes with Neuron hardware errors; recovery stays off (it
        # would terminate instances outside Karpenter's view).
        "npd": {"enabled": True, "nodeRecovery": {"enabled": False}},
    }


def _cluster_version(cluster: eks.ICluster) -> str:
    """The Kubernetes version the cluster resource is created with (cfg.kubernetes_version via
    stacks/cluster_stack.py), read from its AWS::EKS::Cluster when the caller does not pass it."""
    versions = {c.version for c in cluster.node.find_all() if isinstance(c, eks.CfnCluster) and c.version}
    if len(versions) != 1:
        raise ValueError("NeuronAddOn: set props.kubernetes_version (the cluster's version could not be read)")
    return versions.pop()


class NeuronAddOn(Construct):
    """The Neuron device plugin and scheduler extension (one chart)."""

    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: NeuronProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.values = props.merged_values(neuron_values(
            dict(props.node_selector), props.kubernetes_version or _cluster_version(cluster)))
        self.chart = helm_chart(
            self, "Chart", cluster=cluster, props=props, values=self.values,
            wait=True, timeout=Duration.minutes(10),
        )
