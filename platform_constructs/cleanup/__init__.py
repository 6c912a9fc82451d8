"""ClusterCleanup: a custom resource whose Delete removes what Kubernetes controllers created in AWS.

Karpenter's instances, load balancers and target groups, ENIs, EBS volumes and security groups are
not CloudFormation resources; left alone they keep billing and block the VPC's deletion. This
construct adds a custom resource that depends on the cluster and on the Karpenter release (and on
anything else passed in `depends_on`), so CloudFormation deletes it -- runs the cleanup -- *before*
it deletes Karpenter, the cluster and the VPC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from platform_constructs.nag import acknowledge, wildcard_resource_findings

HANDLER_DIR = Path(__file__).parent / "handler"
LAMBDA_TIMEOUT = Duration.minutes(15)  # Lambda's maximum
DEFAULT_CLEANUP_TIMEOUT = Duration.minutes(14)  # the handler's deadline, inside the Lambda timeout
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


class ClusterCleanup(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cluster_name: str, vpc: ec2.IVpc,
                 depends_on: Sequence[IConstruct] = (), timeout: Duration = DEFAULT_CLEANUP_TIMEOUT,
                 log_retention: logs.RetentionDays = LOG_RETENTION) -> None:
        super().__init__(scope, construct_id)
        if timeout.to_seconds() > LAMBDA_TIMEOUT.to_seconds() - 30:
            raise ValueError(
                f"ClusterCleanup timeout: {timeout.to_seconds()} s does not fit the 15-minute Lambda "
                "limit less 30 s for reporting; use at most 870 seconds"
            )
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
        )
        self.handler.add_to_role_policy(iam.PolicyStatement(
            sid="Describe",  # Describe* calls support no resource-level permissions
            actions=[
                "ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVolumes",
                "ec2:DescribeSecurityGroups", "ec2:DescribeLaunchTemplates", "ec2:DescribeAvailabilityZones",
                "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTags",
            ],
            resources=["*"],
        ))
        self.handler.add_to_role_policy(iam.PolicyStatement(
            sid="TerminateThisClustersInstances",
            actions=["ec2:TerminateInstances"],
            resources=[stack.format_arn(service="ec2", resource="instance", resource_name="*")],
            conditions={"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"}},
        ))
        self.handler.add_to_role_policy(iam.PolicyStatement(
            sid="DeleteLeftovers",  # the handler only acts on resources tagged for this cluster
            actions=[
                "ec2:DeleteNetworkInterface", "ec2:DeleteVolume", "ec2:DeleteSecurityGroup",
                "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:DeleteLaunchTemplate",
            ],
            resources=[stack.format_arn(service="ec2", resource=r, resource_name="*")
                       for r in ("network-interface", "volume", "security-group", "launch-template")],
        ))
        self.handler.add_to_role_policy(iam.PolicyStatement(
            sid="DeleteControllerLoadBalancers",
            actions=["elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:DeleteTargetGroup"],
            resources=[stack.format_arn(service="elasticloadbalancing", resource=r, resource_name="*")
                       for r in ("loadbalancer", "targetgroup")],
        ))

        provider_logs = logs.LogGroup(self, "ProviderLogs", retention=log_retention,
                                      removal_policy=RemovalPolicy.DESTROY)
        provider = cr.Provider(self, "Provider", on_event_handler=self.handler, log_group=provider_logs)

        self.resource = CustomResource(
            self, "Resource",
            service_token=provider.service_token,
            resource_type="Custom::ClusterCleanup",
            properties={
                "ClusterName": cluster_name,
                "VpcId": vpc.vpc_id,
                "TimeoutSeconds": str(int(timeout.to_seconds())),
            },
        )
        # CloudFormation deletes a resource before the resources it depends on: the cleanup runs while
        # Karpenter, the cluster and the VPC still exist.
        for dep in depends_on:
            self.resource.node.add_dependency(dep)
        self.resource.node.add_dependency(vpc)

        wildcards = ["*", f"{self.handler.function_arn}:*", *[
            stack.format_arn(service="ec2", resource=r, resource_name="*")
            for r in ("instance", "network-interface", "volume", "security-group", "launch-template")
        ], *[stack.format_arn(service="elasticloadbalancing", resource=r, resource_name="*")
             for r in ("loadbalancer", "targetgroup")]]
        acknowledge(self, {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]":
                "The standard Lambda logging policy, used by the handler and the CDK provider framework.",
            "AwsSolutions-L1": "The provider framework's runtime is chosen by aws-cdk-lib; the handler uses the newest Python.",
            **wildcard_resource_findings(self, wildcards,
                "EC2/ELB Describe calls have no resource-level permissions; deletes are limited to this account and "
                "region (instances to this cluster's ownership tag) and the handler only acts on resources tagged "
                "for this cluster; the provider framework invokes any version of its handler."),
        })

    @property
    def custom_resource(self) -> CustomResource:
        return self.resource
