"""An EKS managed add-on, optionally with Pod Identity associations EKS creates along with it."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import aws_eks_v2 as eks, aws_iam as iam
from constructs import Construct


class ManagedAddon(Construct):
    def __init__(
        self, scope: Construct, id: str, *,
        cluster: eks.ICluster,
        name: str,
        configuration: dict[str, Any] | None = None,
        service_account_roles: dict[str, iam.IRole] | None = None,
    ) -> None:
        super().__init__(scope, id)
        # No addon_version: EKS installs the default version for the cluster's pinned Kubernetes
        # version, so the add-on versions move only when kubernetes_version does.
        self.resource = eks.CfnAddon(
            self, "Resource",
            addon_name=name,
            cluster_name=cluster.cluster_name,
            # Take over the self-managed copies EKS bootstraps (vpc-cni, kube-proxy, coredns).
            resolve_conflicts="OVERWRITE",
            configuration_values=json.dumps(configuration, sort_keys=True) if configuration else None,
            pod_identity_associations=[
                eks.CfnAddon.PodIdentityAssociationProperty(service_account=sa, role_arn=role.role_arn)
                for sa, role in (service_account_roles or {}).items()
            ] or None,
        )
