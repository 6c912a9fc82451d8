"""The EKS managed networking/DNS add-ons every cluster needs: vpc-cni, kube-proxy, coredns, Pod Identity agent.

One props class and one construct per add-on (blueprints' VpcCniAddOn, KubeProxyAddOn, CoreDnsAddOn,
EksPodIdentityAgentAddOn); CoreAddOns installs the four under one scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from platform_constructs.addons.managed_addon import ManagedAddOn, ManagedAddOnProps


@dataclass(frozen=True, kw_only=True)
class VpcCniProps(ManagedAddOnProps):
    addon_name: str = "vpc-cni"
    # NetworkPolicy enforcement by the VPC CNI, so charts can fence the model server in.
    configuration: Mapping[str, Any] | None = field(default_factory=lambda: {"enableNetworkPolicy": "true"})


@dataclass(frozen=True, kw_only=True)
class KubeProxyProps(ManagedAddOnProps):
    addon_name: str = "kube-proxy"


@dataclass(frozen=True, kw_only=True)
class CoreDnsProps(ManagedAddOnProps):
    addon_name: str = "coredns"


@dataclass(frozen=True, kw_only=True)
class PodIdentityAgentProps(ManagedAddOnProps):
    addon_name: str = "eks-pod-identity-agent"


class VpcCniAddOn(ManagedAddOn):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: VpcCniProps) -> None:
        super().__init__(scope, id, cluster=cluster, props=props)


class KubeProxyAddOn(ManagedAddOn):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: KubeProxyProps) -> None:
        super().__init__(scope, id, cluster=cluster, props=props)


class CoreDnsAddOn(ManagedAddOn):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: CoreDnsProps) -> None:
        super().__init__(scope, id, cluster=cluster, props=props)


class PodIdentityAgentAddOn(ManagedAddOn):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: PodIdentityAgentProps) -> None:
        super().__init__(scope, id, cluster=cluster, props=props)


@dataclass(frozen=True, kw_only=True)
class CoreAddOnsProps:
    vpc_cni: VpcCniProps = field(default_factory=VpcCniProps)
    kube_proxy: KubeProxyProps = field(default_factory=KubeProxyProps)
    coredns: CoreDnsProps = field(default_factory=CoreDnsProps)
    pod_identity_agent: PodIdentityAgentProps = field(default_factory=PodIdentityAgentProps)


class CoreAddOns(Construct):
    """The four core add-ons, each with the construct id of its add-on name."""

    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: CoreAddOnsProps) -> None:
        super().__init__(scope, id)
        self.props = props
        addons = (
            (VpcCniAddOn, props.vpc_cni), (KubeProxyAddOn, props.kube_proxy),
            (CoreDnsAddOn, props.coredns), (PodIdentityAgentAddOn, props.pod_identity_agent),
        )
        self.addons: dict[str, ManagedAddOn] = {
            p.addon_name: cls(self, p.addon_name, cluster=cluster, props=p) for cls, p in addons
        }
