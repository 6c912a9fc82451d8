"""Node-and-pod subnets carved from a secondary VPC CIDR (the blueprint's 100.64.0.0/16).

With the VPC CNI every pod takes a VPC IP. Putting the nodes -- and so their pods -- in subnets of a
large secondary range keeps busy Inferentia nodes from exhausting the primary range that the control
plane ENIs and load balancers use. The CDK `Vpc` construct cannot allocate subnets from a secondary
block, hence the L1 resources; each subnet reuses the NAT route table of the private subnet in its AZ.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Sequence

from aws_cdk import Tags, aws_ec2 as ec2
from constructs import Construct


def split_cidr(cidr: str, parts: int) -> list[str]:
    """Split `cidr` into the smallest power-of-two number of equal blocks >= parts; return `parts` of them."""
    net = ipaddress.IPv4Network(cidr)
    diff = max(1, math.ceil(math.log2(parts)))
    return [str(s) for s in list(net.subnets(prefixlen_diff=diff))[:parts]]


class PodSubnets(Construct):
    """Associates a secondary CIDR with `vpc` and creates one private subnet per AZ in it."""

    def __init__(self, scope: Construct, id: str, *, vpc: ec2.Vpc, cidr: str, tags: dict[str, str]) -> None:
        super().__init__(scope, id)
        self.cidr_block = ec2.CfnVPCCidrBlock(self, "SecondaryCidr", vpc_id=vpc.vpc_id, cidr_block=cidr)
        self.subnets: list[ec2.ISubnet] = []
        private_by_az = {s.availability_zone: s for s in vpc.private_subnets}
        azs: Sequence[str] = [s.availability_zone for s in vpc.private_subnets]
        for index, (az, block) in enumerate(zip(azs, split_cidr(cidr, len(azs))), start=1):
            subnet = ec2.CfnSubnet(
                self, f"Subnet{index}",
                vpc_id=vpc.vpc_id, availability_zone=az, cidr_block=block, map_public_ip_on_launch=False,
            )
            subnet.node.add_dependency(self.cidr_block)
            Tags.of(subnet).add("Name", f"{vpc.node.path}/PodSubnet{index}")
            for key, value in tags.items():
                Tags.of(subnet).add(key, value)
            route_table_id = private_by_az[az].route_table.route_table_id
            ec2.CfnSubnetRouteTableAssociation(
                self, f"Subnet{index}Routes", subnet_id=subnet.ref, route_table_id=route_table_id
            )
            self.subnets.append(
                ec2.Subnet.from_subnet_attributes(
                    self, f"Subnet{index}Ref", subnet_id=subnet.ref, availability_zone=az,
                    route_table_id=route_table_id, ipv4_cidr_block=block,
                )
            )
