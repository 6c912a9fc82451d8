"""ClusterCleanup: a custom resource whose Delete removes what Kubernetes controllers created in AWS.

Karpenter's instances, load balancers and target groups, ENIs, EBS volumes and security groups are
not CloudFormation resources; left alone they keep billing and block the VPC's deletion. This
construct adds a custom resource that depends on the cluster and on the Karpenter release (and on
anything else passed in `depends_on`), so CloudFormation deletes it -- runs the cleanup -- *before*
it deletes Karpenter, the cluster and the VPC.

The cluster and VPC are the function's environment, not the event's; its IAM allows each delete only
on resources carrying this cluster's owner tags (the handler's OWNER_TAGS, one table for both), never
on CloudFormation's or EKS's own, and for ENIs and security groups only in this VPC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from config.exposure import hosted_zone_arn
from platform_constructs.cleanup.handler import index as cleanup_handler
from platform_constructs.nag import acknowledge, wildcard_resource_findings

HANDLER_DIR = Path(__file__).parent / "handler"
LAMBDA_TIMEOUT = Duration.minutes(15)  # Lambda's maximum
DEFAULT_CLEANUP_TIMEOUT = Duration.minutes(14)  # the handler's deadline, inside the Lambda timeout
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# EC2/ELB Describe* calls support no resource-level permissions: the Service Authorization Reference
# lists no resource type for them, so "*" is the only Resource they accept (tests/stacks/
# test_iam_wildcards.py holds that list and checks every "*" of every template against it).
DESCRIBE_ACTIONS = (
    "ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVolumes",
    "ec2:DescribeSecurityGroups", "ec2:DescribeLaunchTemplates", "ec2:DescribeAvailabilityZones",
    "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTags",
)
# Per kind of resource the handler deletes: the actions, the ARN's (service, resource type), and whether
# the delete supports the ec2:Vpc condition key (Service Authorization Reference, Amazon EC2: network
# interfaces and security groups do; instances, volumes and launch templates have no VPC key).
DELETES = {
    "instance": (("ec2:TerminateInstances",), ("ec2", "instance"), False),
    "launch-template": (("ec2:DeleteLaunchTemplate",), ("ec2", "launch-template"), False),
    "network-interface": (("ec2:DeleteNetworkInterface",), ("ec2", "network-interface"), True),
    "volume": (("ec2:DeleteVolume",), ("ec2", "volume"), False),
    "security-group": (("ec2:DeleteSecurityGroup",), ("ec2", "security-group"), True),
    # v2 (loadbalancer/app|net/...) and classic (loadbalancer/<name>) load balancers share the ARN prefix,
    # and a classic one's owner tag is one of these: the handler's "classic-load-balancer" needs no more.
    "load-balancer": (("elasticloadbalancing:DeleteLoadBalancer",), ("elasticloadbalancing", "loadbalancer"), False),
    "target-group": (("elasticloadbalancing:DeleteTargetGroup",), ("elasticloadbalancing", "targetgroup"), False),
}
# Karpenter's own deletes are conditioned on its nodepool tag too (its v1.14.1 AllowScopedDeletion).
NODEPOOL_KINDS = ("instance", "launch-template")


def delete_statements(stack: Stack, cluster_name: str, vpc_arn: str) -> list[iam.PolicyStatement]:
    """One statement per (kind, owner tag) of the handler's OWNER_TAGS: a delete is allowed only on a
    resource carrying one of this cluster's owner tags, never on one CloudFormation or EKS manages, and
    for ENIs and security groups only in this VPC. Rules that point at a doomed group are revoked only
    on groups of this VPC (they belong to other groups, e.g. the node group's, untagged by controllers)."""
    statements = []
    for kind, (actions, (service, resource), vpc_key) in DELETES.items():
        for i, (key, value) in enumerate(cleanup_handler.owner_tags(kind, cluster_name)):
            conditions: dict = {
                "StringEquals": {f"aws:ResourceTag/{key}": value},
                "Null": {f"aws:ResourceTag/{tag}": "true" for tag in cleanup_handler.PROTECTED_TAGS[kind]},
            }
            if kind in NODEPOOL_KINDS:
                conditions["StringLike"] = {f"aws:ResourceTag/{cleanup_handler.NODEPOOL_TAG}": "*"}
            if vpc_key:
                conditions["ArnEquals"] = {"ec2:Vpc": vpc_arn}
            statements.append(iam.PolicyStatement(
                sid=f"Delete{kind.title().replace('-', '')}{i}", actions=list(actions), conditions=conditions,
                resources=[stack.format_arn(service=service, resource=resource, resource_name="*")],
            ))
    statements.append(iam.PolicyStatement(
        sid="RevokeRulesInThisVpc", actions=["ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"],
        resources=[stack.format_arn(service="ec2", resource="security-group", resource_name="*")],
        conditions={"ArnEquals": {"ec2:Vpc": vpc_arn}},
    ))
    return statements


def dns_statements(hosted_zone_id: str, record_names: Sequence[str]) -> list[iam.PolicyStatement]:
    """external-dns's records of this cluster: list the one zone, delete only the configured names."""
    zone = hosted_zone_arn(hosted_zone_id)
    return [
        iam.PolicyStatement(sid="ListDnsRecords", actions=["route53:ListResourceRecordSets"], resources=[zone]),
        iam.PolicyStatement(sid="DeleteDnsRecords", actions=["route53:ChangeResourceRecordSets"], resources=[zone],
                            conditions={"ForAllValues:StringEquals": {
                                "route53:ChangeResourceRecordSetsNormalizedRecordNames": sorted(record_names),
                                "route53:ChangeResourceRecordSetsActions": ["DELETE"]}}),
    ]


class ClusterCleanup(Construct):
    """cluster_name: a plain string (it is part of IAM condition keys, which cannot be tokens)."""

    def __init__(self, scope: Construct, construct_id: str, *, cluster_name: str, vpc: ec2.IVpc,
                 depends_on: Sequence[IConstruct] = (), timeout: Duration = DEFAULT_CLEANUP_TIMEOUT,
                 log_retention: logs.RetentionDays = LOG_RETENTION, hosted_zone_id: str | None = None,
                 dns_record_names: Sequence[str] = ()) -> None:
        super().__init__(scope, construct_id)
        if timeout.to_seconds() > LAMBDA_TIMEOUT.to_seconds() - 30:
            raise ValueError(
                f"ClusterCleanup timeout: {timeout.to_seconds()} s does not fit the 15-minute Lambda "
                "limit less 30 s for reporting; use at most 870 seconds"
            )
        if Token.is_unresolved(cluster_name):
            raise ValueError("ClusterCleanup cluster_name: pass the configured name (cfg.cluster_name), not a "
                             "token: it is part of IAM condition keys")
        stack = Stack.of(self)

        handler_logs = logs.LogGroup(self, "HandlerLogs", retention=log_retention,
                                     removal_policy=RemovalPolicy.DESTROY)
        self.handler = lambda_.Function(
            self, "Handler",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "*.pyc"]),
            timeout=LAMBDA_TIMEOUT,
            memory_size=256,
            log_group=handler_logs,
            description=f"Destroy-time cleanup of Karpenter instances and controller leftovers of {cluster_name}",
            # Which cluster and VPC is configuration, not input: the event cannot choose them.
            environment={
                cleanup_handler.ENV_CLUSTER_NAME: cluster_name,
                cleanup_handler.ENV_VPC_ID: vpc.vpc_id,
                cleanup_handler.ENV_TIMEOUT_SECONDS: str(int(timeout.to_seconds())),
                **({cleanup_handler.ENV_HOSTED_ZONE_ID: hosted_zone_id} if hosted_zone_id else {}),
            },
        )
        self.handler.add_to_role_policy(iam.PolicyStatement(
            sid="Describe", actions=list(DESCRIBE_ACTIONS), resources=["*"],
        ))
        self.delete_statements = delete_statements(stack, cluster_name, vpc.vpc_arn)
        if hosted_zone_id:
            self.delete_statements += dns_statements(hosted_zone_id, dns_record_names)
        for statement in self.delete_statements:
            self.handler.add_to_role_policy(statement)

        provider_logs = logs.LogGroup(self, "ProviderLogs", retention=log_retention,
                                      removal_policy=RemovalPolicy.DESTROY)
        provider = cr.Provider(self, "Provider", on_event_handler=self.handler, log_group=provider_logs)

        self.resource = CustomResource(
            self, "Resource",
            service_token=provider.service_token,
            resource_type="Custom::ClusterCleanup",
        )
        # CloudFormation deletes a resource before the resources it depends on: the cleanup runs while
        # Karpenter, the cluster and the VPC still exist.
        for dep in depends_on:
            self.resource.node.add_dependency(dep)
        self.resource.node.add_dependency(vpc)

        wildcards = ["*", f"{self.handler.function_arn}:*",
                     *sorted({r for st in self.delete_statements for r in st.resources})]
        acknowledge(self, {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]":
                "The standard Lambda logging policy, used by the handler and the CDK provider framework.",
            "AwsSolutions-L1": "The provider framework's runtime is chosen by aws-cdk-lib; the handler uses the newest Python.",
            **wildcard_resource_findings(self, wildcards,
                "Resource * only for the EC2/ELB Describe* calls, which support no resource-level permissions. "
                "The deletes name IDs the controllers chose, so their ARNs end in *; each is conditioned on one "
                "of this cluster's owner tags, refused on resources CloudFormation or EKS manage, and for ENIs "
                "and security groups limited to this VPC (ec2:Vpc); rule revokes only in this VPC. The provider "
                "framework invokes any version of its own handler."),
        })

    @property
    def custom_resource(self) -> CustomResource:
        return self.resource
