"""NetworkStack: the VPC the cluster lives in.

Public subnets for internet-facing load balancers, private subnets (primary CIDR) for the EKS control
plane ENIs and internal load balancers, and node/pod subnets in the secondary range, one NAT gateway
per AZ (an AZ outage must not cut the others off from ECR and the model hub), and VPC flow logs,
encrypted with the stack's log key (as is the log group of CDK's default-security-group restrictor).
"""

from __future__ import annotations

import ipaddress

from aws_cdk import RemovalPolicy, Stack, Tags, aws_ec2 as ec2, aws_logs as logs
from constructs import Construct

from config.environments import EnvironmentConfig
from platform_constructs.pod_subnets import PodSubnets
from platform_constructs.tags import ELB_TAG, INTERNAL_ELB_TAG, KARPENTER_DISCOVERY_TAG, cluster_tag
from platform_constructs.observability.log_encryption import encrypt_log_groups
from platform_constructs.observability.retention import retention_for


class NetworkStack(Stack):
    def __init__(self, scope: Construct, id: str, *, cfg: EnvironmentConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        prefix = ipaddress.IPv4Network(cfg.vpc_cidr).prefixlen
        self.vpc = ec2.Vpc(
            self, "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cfg.vpc_cidr),
            availability_zones=list(cfg.availability_zones),
            nat_gateways=len(cfg.availability_zones),
            enable_dns_hostnames=True,  # required for the private EKS endpoint
            enable_dns_support=True,
            subnet_configuration=[
                # Sizes scale with the VPC: a /16 gives /22 public and /19 private subnets per AZ.
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=prefix + 6),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=prefix + 3
                ),
            ],
        )
        for subnet in self.vpc.public_subnets:
            Tags.of(subnet).add(ELB_TAG, "1")
        for subnet in self.vpc.private_subnets:
            Tags.of(subnet).add(INTERNAL_ELB_TAG, "1")

        # Nodes and pods: Karpenter finds these by the discovery tag; the core node group uses them too.
        self.pod_subnets = PodSubnets(
            self, "PodSubnets", vpc=self.vpc, cidr=cfg.secondary_cidr,
            tags={KARPENTER_DISCOVERY_TAG: cfg.cluster_name, cluster_tag(cfg.cluster_name): "shared"},
        ).subnets

        self.logs_key = encrypt_log_groups(self)
        flow_log_group = logs.LogGroup(
            self, "FlowLogs",
            retention=retention_for(cfg.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
