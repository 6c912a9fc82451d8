"""Amazon CloudWatch Observability (EKS managed add-on): Container Insights with enhanced observability,
Fluent Bit container logs and Neuron metrics (neuron-monitor), with a least-privilege Pod Identity role."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

from aws_cdk import ArnFormat, Stack, aws_eks_v2 as eks, aws_iam as iam
from constructs import Construct

from config.names import CLOUDWATCH_NAMESPACE
from platform_constructs.addons.managed_addon import ManagedAddOn, ManagedAddOnProps
from platform_constructs.addons.pod_identity import pod_identity_role
from platform_constructs.nag import acknowledge, wildcard_resource_findings

METRIC_NAMESPACES = ["ContainerInsights", "CWAgent"]

# Enhanced Container Insights and accelerated-compute (Neuron) metrics; container logs via Fluent Bit.
CONFIGURATION = {
    "agent": {"config": {"logs": {"metrics_collected": {"kubernetes": {
        "enhanced_container_insights": True,
        "accelerated_compute_metrics": True,
    }}}}},
    "containerLogs": {"enabled": True},
}


def log_group_prefix(cluster_name: str) -> str:
    return f"/aws/containerinsights/{cluster_name}"


@dataclass(frozen=True, kw_only=True)
class CloudWatchObservabilityProps(ManagedAddOnProps):
    cluster_name: str  # the cluster's name as a string: the agent's log groups are named after it
    addon_name: str = "amazon-cloudwatch-observability"
    namespace: str = CLOUDWATCH_NAMESPACE  # the add-on creates it
    service_account: str | None = "cloudwatch-agent"
    configuration: Mapping[str, Any] | None = field(default_factory=lambda: copy.deepcopy(CONFIGURATION))


class CloudWatchObservabilityAddOn(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.Cluster, props: CloudWatchObservabilityProps) -> None:
        super().__init__(scope, id)
        self.props = props
        stack = Stack.of(self)
        cluster_name = props.cluster_name
        self.role = pod_identity_role(self, "Role", description="CloudWatch agent and Fluent Bit (Pod Identity)",
                                      cluster=cluster)
        log_groups = stack.format_arn(
            service="logs", resource="log-group", resource_name=f"{log_group_prefix(cluster_name)}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.role.add_to_policy(iam.PolicyStatement(
            sid="WriteContainerInsightsLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                     "logs:DescribeLogStreams", "logs:PutRetentionPolicy"],
            resources=[log_groups, f"{log_groups}:log-stream:*"],
        ))
        self.role.add_to_policy(iam.PolicyStatement(
            sid="PutAgentMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACES}},
        ))
        self.role.add_to_policy(iam.PolicyStatement(
            sid="DescribeNodesAndLogGroups",
            actions=["ec2:DescribeInstances", "ec2:DescribeTags", "ec2:DescribeVolumes", "logs:DescribeLogGroups"],
            resources=["*"],
        ))
        acknowledge(self.role, {
            "AwsSolutions-IAM5[Resource::*]":
                "cloudwatch:PutMetricData and the EC2/Logs Describe* calls do not support resource-level "
                "permissions; PutMetricData is limited to the Container Insights namespaces by condition.",
            **wildcard_resource_findings(
                self, [log_groups, f"{log_groups}:log-stream:*"],
                "Container Insights writes one log group per kind (performance, application, host, dataplane) "
                "with per-node/pod streams, all under this cluster's prefix only.",
            ),
        })
        self.addon = ManagedAddOn(self, "Addon", cluster=cluster, props=props, role=self.role)
