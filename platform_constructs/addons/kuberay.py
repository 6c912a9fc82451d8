"""KubeRay operator (Helm, pinned 1.7.x): reconciles the RayService the inference chart deploys."""

from __future__ import annotations

from aws_cdk import Duration, aws_eks_v2 as eks
from constructs import Construct

from config.names import KUBERAY_NAMESPACE
from config.versions import KUBERAY_CHART_REPO, KUBERAY_VERSION


class KubeRayOperator(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, core_node_selector: dict[str, str]) -> None:
        super().__init__(scope, id)
        self.values = {
            "nodeSelector": core_node_selector,
            "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}},
        }
        self.chart = eks.HelmChart(
            self, "Chart", cluster=cluster, chart="kuberay-operator", repository=KUBERAY_CHART_REPO,
            version=KUBERAY_VERSION, namespace=KUBERAY_NAMESPACE, create_namespace=True, release="kuberay-operator",
            values=self.values, wait=True, timeout=Duration.minutes(10),
        )
