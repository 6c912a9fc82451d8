"""What every EKS managed add-on shares (cdk-eks-blueprints' CoreAddOnProps), and the construct that
installs one, optionally with the Pod Identity association EKS creates along with it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from aws_cdk import aws_eks_v2 as eks, aws_iam as iam
from constructs import Construct


@dataclass(frozen=True, kw_only=True)
class ManagedAddOnProps:
    addon_name: str
    # None: EKS installs the default version for the cluster's pinned Kubernetes version, so the add-on
    # versions move only when kubernetes_version does.
    version: str | None = None
    namespace: str = "kube-system"  # where EKS runs it (informational: EKS chooses it)
    service_account: str | None = None  # the one a Pod Identity role is associated with, if any
    configuration: Mapping[str, Any] | None = None  # the add-on's configuration values


class ManagedAddOn(Construct):
    def __init__(
        self, scope: Construct, id: str, *, cluster: eks.ICluster, props: ManagedAddOnProps,
        role: iam.IRole | None = None,
    ) -> None:
        super().__init__(scope, id)
        if role is not None and not props.service_account:
            raise ValueError(f"{props.addon_name}: a Pod Identity role needs props.service_account")
        self.props = props
        self.resource = eks.CfnAddon(
            self, "Resource",
            addon_name=props.addon_name,
            addon_version=props.version,
            cluster_name=cluster.cluster_name,
            # Take over the self-managed copies EKS bootstraps (vpc-cni, kube-proxy, coredns).
            resolve_conflicts="OVERWRITE",
            configuration_values=json.dumps(dict(props.configuration), sort_keys=True) if props.configuration else None,
            pod_identity_associations=[
                eks.CfnAddon.PodIdentityAssociationProperty(service_account=props.service_account,
                                                           role_arn=role.role_arn)
            ] if role is not None else None,
        )
