"""KubeRay operator (Helm, pinned 1.7.x): reconciles the RayService the inference chart deploys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from aws_cdk import Duration, aws_eks_v2 as eks
from constructs import Construct

from config.names import CORE_NODE_ROLE, KUBERAY_NAMESPACE, NODE_ROLE_LABEL
from config.versions import KUBERAY_CHART_REPO, KUBERAY_VERSION
from platform_constructs.addons.helm_addon import HelmAddOnProps, helm_chart


@dataclass(frozen=True, kw_only=True)
class KubeRayProps(HelmAddOnProps):
    chart: str = "kuberay-operator"
    repository: str = KUBERAY_CHART_REPO
    version: str = KUBERAY_VERSION
    namespace: str = KUBERAY_NAMESPACE
    release: str = "kuberay-operator"
    node_selector: Mapping[str, str] = field(default_factory=lambda: {NODE_ROLE_LABEL: CORE_NODE_ROLE})


class KubeRayAddOn(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: KubeRayProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.values = props.merged_values({
            "nodeSelector": dict(props.node_selector),
            "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}},
        })
        self.chart = helm_chart(
            self, "Chart", cluster=cluster, props=props, values=self.values,
            create_namespace=True, wait=True, timeout=Duration.minutes(10),
        )
