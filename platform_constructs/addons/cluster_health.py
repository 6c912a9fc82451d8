"""Cluster health add-ons (issue 13), both EKS managed add-ons at the cluster version's default release:

- metrics-server (EKS community add-on): the resource metrics API, so `kubectl top` and any
  HorizontalPodAutoscaler work. Ray Serve's replica autoscaling does not need it; people do.
- eks-node-monitoring-agent: reads each node's kernel, container runtime, storage, networking and
  accelerator (Neuron included) health and reports conditions and events on the Node. EKS node
  auto-repair of the managed core node group (stacks/cluster_stack.py enable_node_auto_repair) acts on
  those conditions. Karpenter's nodes are not managed node groups: Karpenter's own node repair (the
  NodeRepair feature gate) reads the same conditions; docs/platform.md says what is on.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from platform_constructs.addons.managed_addon import ManagedAddOn, ManagedAddOnProps


@dataclass(frozen=True, kw_only=True)
class MetricsServerProps(ManagedAddOnProps):
    addon_name: str = "metrics-server"


@dataclass(frozen=True, kw_only=True)
class NodeMonitoringAgentProps(ManagedAddOnProps):
    addon_name: str = "eks-node-monitoring-agent"


class MetricsServerAddOn(ManagedAddOn):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: MetricsServerProps) -> None:
        super().__init__(scope, id, cluster=cluster, props=props)


class NodeMonitoringAgentAddOn(ManagedAddOn):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: NodeMonitoringAgentProps) -> None:
        super().__init__(scope, id, cluster=cluster, props=props)
