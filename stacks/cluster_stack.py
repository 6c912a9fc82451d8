"""ClusterStack: the EKS control plane (aws_eks_v2), a small core node group and the managed add-ons.

Accelerator capacity is NOT here: inf2/trn1 nodes come from Karpenter (AddonsStack). A managed
Neuron node group would make CDK apply its bundled (outdated) Neuron device plugin.
"""

from __future__ import annotations

import importlib
import json

from aws_cdk import Duration, Stack, aws_ec2 as ec2, aws_eks_v2 as eks, aws_kms as kms
from constructs import Construct

from config.environments import EnvironmentConfig, admin_role_arn
from config.names import CORE_NODE_ROLE, NODE_ROLE_LABEL
from config.versions import KUBECTL_LAYER_MODULES
from platform_constructs.addons.cloudwatch_observability import (
    CloudWatchObservabilityAddOn, CloudWatchObservabilityProps, log_group_prefix,
)
from platform_constructs.addons.cluster_health import (
    MetricsServerAddOn, MetricsServerProps, NodeMonitoringAgentAddOn, NodeMonitoringAgentProps,
)
from platform_constructs.addons.core import CoreAddOns, CoreAddOnsProps
from platform_constructs.addons.ebs_csi import EbsCsiAddOn, EbsCsiProps
from platform_constructs.karpenter_pools import IMDS_HOP_LIMIT
from platform_constructs.nag import acknowledge, wildcard_resource_findings
from platform_constructs.observability.retention import retention_for, service_log_groups

CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
CORE_NODE_ROOT_GIB = 100


def kubectl_layer(scope: Construct, kubernetes_version: str):
    """The kubectl Lambda layer whose kubectl matches the cluster's minor version."""
    module = importlib.import_module(KUBECTL_LAYER_MODULES[kubernetes_version])
    minor = kubernetes_version.split(".")[1]
    return getattr(module, f"KubectlV{minor}Layer")(scope, "KubectlLayer")


def endpoint_access(cfg: EnvironmentConfig) -> eks.EndpointAccess:
    """Private endpoint always; the public one only for the configured CIDRs (none: private only)."""
    if cfg.endpoint_public_cidrs:
        return eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*cfg.endpoint_public_cidrs)
    return eks.EndpointAccess.PRIVATE


def admin_principals(stack: Stack, cfg: EnvironmentConfig) -> list[str]:
    """The admin role ARNs: role names resolve in the account this stack deploys into."""
    return [admin_role_arn(entry, partition=stack.partition, account=stack.account) for entry in cfg.admin_role_arns]


def _ecr_public_policy_finding(stack: Stack, handler: Construct) -> str:
    """cdk-nag's id for the conditional ECR Public policy CDK puts on its kubectl handler role."""
    condition = stack.get_logical_id(handler.node.find_child("HasEcrPublic"))
    arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]}
    value = {"Fn::If": [condition, arn, {"Ref": "AWS::NoValue"}]}
    return f"AwsSolutions-IAM4[Policy::{json.dumps(value, separators=(',', ':'))}]"


class ClusterStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, cfg: EnvironmentConfig, vpc: ec2.IVpc,
        node_subnets: list[ec2.ISubnet], **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.core_node_selector = {NODE_ROLE_LABEL: CORE_NODE_ROLE}

        # EKS and Container Insights create these on first write with no expiry; create them first.
        retention = retention_for(cfg.log_retention_days)
        control_plane_logs = service_log_groups(
            self, {"ControlPlaneLogs": f"/aws/eks/{cfg.cluster_name}/cluster"}, retention)
        insights_logs = service_log_groups(self, {
            f"ContainerInsights{kind.title()}Logs": f"{log_group_prefix(cfg.cluster_name)}/{kind}"
            for kind in ("application", "dataplane", "host", "performance")
        }, retention)

        secrets_key = kms.Key(
            self, "SecretsKey", enable_key_rotation=True,
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {cfg.cluster_name}",
        )
        self.cluster = eks.Cluster(
            self, "Cluster",
            cluster_name=cfg.cluster_name,
            version=eks.KubernetesVersion.of(cfg.kubernetes_version),
            vpc=vpc,
            # Control-plane ENIs in the primary private subnets; nodes go to the secondary-range subnets.
            vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
            endpoint_access=endpoint_access(cfg),
            cluster_logging=list(eks.ClusterLoggingTypes),
            secrets_encryption_key=secrets_key,
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,  # our own core node group below; accelerators come from Karpenter
            # Admins get access through explicit access entries, not as a side effect of who deployed.
            bootstrap_cluster_creator_admin_permissions=False,
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=kubectl_layer(self, cfg.kubernetes_version),
            ),
        )
        for group in control_plane_logs:
            self.cluster.node.add_dependency(group)
        # From the environment's config, so every deploy (by hand or by the pipeline) keeps them.
        for index, role_arn in enumerate(admin_principals(self, cfg), start=1):
            self.cluster.grant_access(f"Admin{index}", role_arn, [
                eks.AccessPolicy.from_access_policy_name(
                    CLUSTER_ADMIN_POLICY, access_scope_type=eks.AccessScopeType.CLUSTER
                )
            ])

        self.core_nodes = self._core_nodegroup(cfg, node_subnets)

        # Managed add-ons (EKS picks each one's default version for kubernetes_version). coredns and the
        # daemonsets need nodes to become healthy.
        self.core_addons = CoreAddOns(self, "CoreAddons", cluster=self.cluster, props=CoreAddOnsProps())
        self.ebs_csi = EbsCsiAddOn(self, "EbsCsi", cluster=self.cluster, props=EbsCsiProps())
        self.cloudwatch = CloudWatchObservabilityAddOn(
            self, "CloudWatch", cluster=self.cluster, props=CloudWatchObservabilityProps(cluster_name=cfg.cluster_name)
        )
        # Issue 13: `kubectl top`/HPA, and node health conditions for auto-repair.
        self.metrics_server = MetricsServerAddOn(self, "MetricsServer", cluster=self.cluster, props=MetricsServerProps())
        self.node_monitoring = NodeMonitoringAgentAddOn(self, "NodeMonitoringAgent", cluster=self.cluster,
                                                        props=NodeMonitoringAgentProps())
        for addon in (*self.core_addons.addons.values(), self.ebs_csi.addon, self.cloudwatch.addon,
                      self.metrics_server, self.node_monitoring):
            addon.node.add_dependency(self.core_nodes)
        for group in insights_logs:
            self.cloudwatch.addon.node.add_dependency(group)
        self._acknowledge_cdk_internals()

    def _core_nodegroup(self, cfg: EnvironmentConfig, subnets: list[ec2.ISubnet]) -> eks.Nodegroup:
        """x86 on-demand nodes for system pods, operators and the Ray head (labelled for the charts)."""
        template = ec2.LaunchTemplate(
            self, "CoreNodeTemplate",
            block_devices=[ec2.BlockDevice(
                device_name="/dev/xvda",
                volume=ec2.BlockDeviceVolume.ebs(
                    CORE_NODE_ROOT_GIB, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                ),
            )],
            # IMDSv2 only, one hop: pods cannot reach the node role (karpenter_pools.IMDS_HOP_LIMIT says why).
            require_imdsv2=True,
            http_put_response_hop_limit=IMDS_HOP_LIMIT,
        )
        return self.cluster.add_nodegroup_capacity(
            "CoreNodes",
            nodegroup_name=f"{cfg.cluster_name}-core",
            instance_types=[ec2.InstanceType(t) for t in cfg.core_instance_types],
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
            capacity_type=eks.CapacityType.ON_DEMAND,
            min_size=cfg.core_nodes,
            desired_size=cfg.core_nodes,
            max_size=cfg.core_nodes * 2,
            max_unavailable=1,
            subnets=ec2.SubnetSelection(subnets=subnets),
            labels=dict(self.core_node_selector),
            launch_template_spec=eks.LaunchTemplateSpec(
                id=template.launch_template_id, version=template.latest_version_number
            ),
            enable_node_auto_repair=True,
        )

    def _acknowledge_cdk_internals(self) -> None:
        """Findings on resources aws-cdk-lib generates for the cluster, each acknowledged where it arises."""
        acknowledge(self.cluster.role, {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy]":
                "The EKS service role needs the AWS-managed cluster policy; EKS requires exactly it.",
        })
        acknowledge(self.core_nodes.role, {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSWorkerNodePolicy]":
                "Node role of the core node group: the AWS-managed worker policy EKS documents for nodes.",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKS_CNI_Policy]":
                "The VPC CNI on the core nodes assigns pod IPs with the AWS-managed CNI policy.",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly]":
                "Core nodes pull system images from ECR with the AWS-managed read-only policy.",
        })
        provider = self.cluster.node.find_child("KubectlProvider")
        handler = provider.node.find_child("Handler")
        acknowledge(provider, {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]":
                "CDK's kubectl provider Lambdas log to CloudWatch with the basic execution role.",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]":
                "CDK's kubectl provider Lambdas run in the VPC to reach the private API endpoint.",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly]":
                "CDK's kubectl handler can pull Helm charts stored in ECR (read-only, AWS-managed).",
            "AwsSolutions-L1":
                "The kubectl handler's Python runtime is chosen by aws-cdk-lib to match its kubectl/helm "
                "layer; it moves with aws-cdk-lib upgrades.",
            **wildcard_resource_findings(
                self, [f"{handler.function_arn}:*"],
                "CDK's provider framework may invoke any version of its own kubectl handler function only.",
            ),
            _ecr_public_policy_finding(self, handler):
                "CDK's kubectl handler pulls public Helm charts (Karpenter, Neuron) from ECR Public with the "
                "AWS-managed read-only policy; CDK attaches it only where ECR Public exists.",
        })
