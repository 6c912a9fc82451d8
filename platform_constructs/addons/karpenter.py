"""Karpenter v1: controller (Helm, pinned) with IAM by Pod Identity, node role + access entry,
interruption queue with its EventBridge rules, and the EC2NodeClasses/NodePools as manifests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from aws_cdk import Duration, Stack, aws_eks_v2 as eks, aws_events as events, aws_events_targets as targets
from aws_cdk import aws_iam as iam, aws_sqs as sqs
from constructs import Construct

from config.names import CORE_NODE_ROLE, KARPENTER_NAMESPACE, NODE_ROLE_LABEL
from config.versions import KARPENTER_CHART_REPO, KARPENTER_CRD_CHART_REPO, KARPENTER_VERSION
from config.worker_shape import WorkerShape
from platform_constructs import karpenter_pools
from platform_constructs.addons.helm_addon import HelmAddOnProps, helm_chart
from platform_constructs.addons.pod_identity import pod_identity_role
from platform_constructs.nag import acknowledge, wildcard_resource_findings
from platform_constructs.tags import cluster_tag

NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)
# Interruption events Karpenter acts on (drains the node before AWS takes it).
INTERRUPTION_EVENTS = {
    "ScheduledChange": ("aws.health", "AWS Health Event"),
    "SpotInterruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "Rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "InstanceStateChange": ("aws.ec2", "EC2 Instance State-change Notification"),
    # Karpenter v1.14.1 reference (cloudformation.yaml): capacity-reservation interruptions too.
    "CapacityReservationInterruption": ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
}


def controller_statements(cluster_name: str, stack: Stack, queue_arn: str, node_role_arn: str) -> list[iam.PolicyStatement]:
    """Karpenter's controller permissions, statement for statement (same Sids) those of its v1.14.1
    reference CloudFormation (aws/karpenter-provider-aws website/content/en/v1.14/getting-started/
    getting-started-with-karpenter/cloudformation.yaml; the action list is recorded in
    tests/support/data/), scoped to this cluster by the tags Karpenter puts on everything it creates."""
    region, partition, account = stack.region, stack.partition, stack.account
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = {f"aws:RequestTag/{cluster_tag(cluster_name)}": "owned", "aws:RequestTag/eks:eks-cluster-name": cluster_name}
    nodepool_request = {"aws:RequestTag/karpenter.sh/nodepool": "*"}
    resource_owned = {f"aws:ResourceTag/{cluster_tag(cluster_name)}": "owned"}
    nodepool_resource = {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
    created = [f"{ec2}:*:{kind}/*" for kind in
               ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")]
    profile = f"arn:{partition}:iam::{account}:instance-profile/*"
    region_tag = "aws:RequestTag/topology.kubernetes.io/region"
    return [
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceAccessActions", actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[f"{ec2}::image/*", f"{ec2}::snapshot/*", f"{ec2}:*:security-group/*", f"{ec2}:*:subnet/*",
                       f"{ec2}:*:capacity-reservation/*", f"{ec2}:*:placement-group/*"],
        ),
        iam.PolicyStatement(
            sid="AllowScopedEC2LaunchTemplateAccessActions", actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[f"{ec2}:*:launch-template/*"],
            conditions={"StringEquals": resource_owned, "StringLike": nodepool_resource},
        ),
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceActionsWithTags",
            actions=["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"], resources=created,
            conditions={"StringEquals": owned, "StringLike": nodepool_request},
        ),
        iam.PolicyStatement(
            sid="AllowScopedResourceCreationTagging", actions=["ec2:CreateTags"], resources=created,
            conditions={
                "StringEquals": {**owned, "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                "StringLike": nodepool_request,
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedResourceTagging", actions=["ec2:CreateTags"], resources=[f"{ec2}:*:instance/*"],
            conditions={
                "StringEquals": resource_owned, "StringLike": nodepool_resource,
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedDeletion", actions=["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            resources=[f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            conditions={"StringEquals": resource_owned, "StringLike": nodepool_resource},
        ),
        iam.PolicyStatement(
            sid="AllowPassingInstanceRole", actions=["iam:PassRole"], resources=[node_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileCreationActions", actions=["iam:CreateInstanceProfile"], resources=[profile],
            conditions={"StringEquals": {**owned, region_tag: region},
                        "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileTagActions", actions=["iam:TagInstanceProfile"], resources=[profile],
            conditions={
                "StringEquals": {**resource_owned, "aws:ResourceTag/topology.kubernetes.io/region": region,
                                 **owned, region_tag: region},
                "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                               "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileActions",
            actions=["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
            resources=[profile],
            conditions={"StringEquals": {**resource_owned, "aws:ResourceTag/topology.kubernetes.io/region": region},
                        "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}},
        ),
        iam.PolicyStatement(sid="AllowInstanceProfileReadActions", actions=["iam:GetInstanceProfile"], resources=[profile]),
        iam.PolicyStatement(sid="AllowUnscopedInstanceProfileListAction", actions=["iam:ListInstanceProfiles"], resources=["*"]),
        iam.PolicyStatement(
            sid="AllowAPIServerEndpointDiscovery", actions=["eks:DescribeCluster"],
            resources=[f"arn:{partition}:eks:{region}:{account}:cluster/{cluster_name}"],
        ),
        iam.PolicyStatement(
            sid="AllowInterruptionQueueActions", actions=["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            resources=[queue_arn],
        ),
        # EKS zonal shift: Karpenter avoids launching into a zone shifted away from (read-only, this cluster).
        iam.PolicyStatement(
            sid="AllowZonalShiftStatusReadOnly", actions=["arc-zonal-shift:GetManagedResource"], resources=["*"],
            conditions={"StringEquals": {"arc-zonal-shift:ResourceIdentifier":
                                         f"arn:{partition}:eks:{region}:{account}:cluster/{cluster_name}"}},
        ),
        iam.PolicyStatement(
            sid="AllowRegionalReadActions",
            actions=["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                     "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                     "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
                     "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
            resources=["*"], conditions={"StringEquals": {"aws:RequestedRegion": region}},
        ),
        iam.PolicyStatement(
            sid="AllowSSMReadActions", actions=["ssm:GetParameter"],
            resources=[f"arn:{partition}:ssm:{region}::parameter/aws/service/*"],
        ),
        iam.PolicyStatement(sid="AllowPricingReadActions", actions=["pricing:GetProducts"], resources=["*"]),
    ]


@dataclass(frozen=True, kw_only=True)
class KarpenterProps(HelmAddOnProps):
    # The environment: the cluster's name (queue, node role, discovery tags), the environment's name (the
    # nodes' `environment` tag) and the worker shape the accelerator NodePools' limits are sized for.
    cluster_name: str
    environment: str
    worker_shape: WorkerShape
    # The controller chart; the CRDs come from their own chart of the same version.
    chart: str = "karpenter"
    repository: str = KARPENTER_CHART_REPO
    version: str = KARPENTER_VERSION
    namespace: str = KARPENTER_NAMESPACE
    release: str = "karpenter"
    crd_chart: str = "karpenter-crd"
    crd_repository: str = KARPENTER_CRD_CHART_REPO
    crd_release: str = "karpenter-crd"
    service_account: str = "karpenter"
    # Karpenter must never run on capacity it manages: the controller runs on the core node group.
    node_selector: Mapping[str, str] = field(default_factory=lambda: {NODE_ROLE_LABEL: CORE_NODE_ROLE})


class KarpenterAddOn(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: KarpenterProps) -> None:
        super().__init__(scope, id)
        self.props = props
        stack = Stack.of(self)
        name = props.cluster_name

        self.queue = sqs.Queue(
            self, "InterruptionQueue",
            queue_name=name,
            retention_period=Duration.minutes(5),  # a stale interruption notice is useless
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(self.queue, {
            "AwsSolutions-SQS3": "Karpenter deletes every message it handles; a notice it cannot handle is "
                                 "obsolete after minutes, so a dead-letter queue would only collect noise.",
        })
        self.rules = []
        for rule_id, (source, detail_type) in INTERRUPTION_EVENTS.items():
            rule = events.Rule(self, f"{rule_id}Rule",
                               event_pattern=events.EventPattern(source=[source], detail_type=[detail_type]))
            rule.add_target(targets.SqsQueue(self.queue))
            self.rules.append(rule)

        self.node_role = iam.Role(
            self, "NodeRole",
            role_name=karpenter_pools.node_role_name(name),  # referenced by name from the EC2NodeClasses
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(p) for p in NODE_MANAGED_POLICIES],
        )
        acknowledge(self.node_role, {
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{p}]":
                f"Karpenter node role: {p} is one of the AWS-managed policies EKS and Karpenter document for "
                "worker nodes (join, pod networking, image pulls, SSM access for break-glass)."
            for p in NODE_MANAGED_POLICIES
        })
        self.node_access = eks.AccessEntry(
            self, "NodeAccess", cluster=cluster, principal=self.node_role.role_arn, access_policies=[],
            access_entry_type=eks.AccessEntryType.EC2_LINUX,
        )

        self.controller_role = pod_identity_role(self, "ControllerRole", description="Karpenter controller (Pod Identity)",
                                                 cluster=cluster)
        statements = controller_statements(name, stack, self.queue.queue_arn, self.node_role.role_arn)
        policy = iam.Policy(self, "ControllerPolicy", statements=statements)
        policy.attach_to_role(self.controller_role)
        acknowledge(policy, wildcard_resource_findings(
            self, sorted({r for statement in statements for r in statement.resources}),
            "Karpenter launches and tags instances, fleets, volumes, ENIs, launch templates and instance "
            "profiles whose IDs it cannot know in advance; every write is conditioned on this cluster's "
            "ownership tags and reads are limited to this region (Karpenter's reference policy).",
        ))
        self.pod_identity = eks.CfnPodIdentityAssociation(
            self, "ControllerPodIdentity", cluster_name=cluster.cluster_name, namespace=props.namespace,
            service_account=props.service_account, role_arn=self.controller_role.role_arn,
        )

        self.crds = eks.HelmChart(
            self, "Crds", cluster=cluster, chart=props.crd_chart, repository=props.crd_repository,
            version=props.version, namespace=props.namespace, release=props.crd_release,
        )
        self.values = props.merged_values({
            "settings": {"clusterName": name, "interruptionQueue": self.queue.queue_name},
            "serviceAccount": {"name": props.service_account},
            "replicas": 2,
            "nodeSelector": dict(props.node_selector),
            "controller": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                         "limits": {"memory": "1Gi"}},
                           # Karpenter v1.14.1 asks IMDS for its region when AWS_REGION is unset
                           # (pkg/operator/operator.go NewOperator); with hop limit 1 a pod cannot reach IMDS.
                           "env": [{"name": "AWS_REGION", "value": stack.region}]},
        })
        self.chart = helm_chart(
            self, "Chart", cluster=cluster, props=props, values=self.values,
            skip_crds=True,  # owned by the karpenter-crd release above
            wait=True, timeout=Duration.minutes(10),
        )
        self.chart.node.add_dependency(self.crds, self.pod_identity, self.node_access)

        self.node_classes = karpenter_pools.node_classes(cluster_name=name, environment=props.environment)
        self.node_pools = karpenter_pools.node_pools(props.worker_shape)
        self.pools_manifest = eks.KubernetesManifest(
            self, "NodePools", cluster=cluster, manifest=[*self.node_classes, *self.node_pools], overwrite=True,
        )
        self.pools_manifest.node.add_dependency(self.chart)
