"""Amazon CloudWatch Observability (EKS managed add-on): Container Insights with enhanced observability,
Fluent Bit container logs and Neuron metrics (neuron-monitor), with a least-privilege Pod Identity role."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack, aws_eks_v2 as eks, aws_iam as iam
from constructs import Construct

from config.names import CLOUDWATCH_NAMESPACE
from platform_constructs.addons.managed_addon import ManagedAddon
from platform_constructs.addons.pod_identity import pod_identity_role
from platform_constructs.nag import acknowledge, wildcard_resource_findings

ADDON_NAME = "amazon-cloudwatch-observability"
NAMESPACE = CLOUDWATCH_NAMESPACE
SERVICE_ACCOUNT = "cloudwatch-agent"
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


class CloudWatchObservability(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.Cluster, cluster_name: str) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.role = pod_identity_role(self, "Role", description="CloudWatch agent and Fluent Bit (Pod Identity)")
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
        self.addon = ManagedAddon(
            self, "Addon", cluster=cluster, name=ADDON_NAME, configuration=CONFIGURATION,
            service_account_roles={SERVICE_ACCOUNT: self.role},
        )
