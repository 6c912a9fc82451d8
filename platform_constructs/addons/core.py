"""The EKS managed networking/DNS add-ons every cluster needs: vpc-cni, kube-proxy, coredns, Pod Identity agent."""

from __future__ import annotations

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from platform_constructs.addons.managed_addon import ManagedAddon

CORE_ADDONS = ("vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent")


class CoreAddons(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster) -> None:
        super().__init__(scope, id)
        configuration = {
            # NetworkPolicy enforcement by the VPC CNI, so charts can fence the model server in.
            "vpc-cni": {"enableNetworkPolicy": "true"},
        }
        self.addons = {
            name: ManagedAddon(self, name, cluster=cluster, name=name, configuration=configuration.get(name))
            for name in CORE_ADDONS
        }
