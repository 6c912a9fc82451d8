"""External Secrets Operator (Helm, pinned): syncs Secrets Manager secrets into Kubernetes Secrets.

Chosen over the Secrets Store CSI driver because the consumers read a synced Kubernetes Secret in both
forms: Open WebUI, the smoke Job and KubeRay's Ray token as environment variables / a Secret KubeRay
reads itself, the serving app's named API keys as a mounted Secret that the kubelet updates in place
(and ESO can pick one JSON field per key); the CSI driver only syncs a Secret while some pod mounts its
volume. IAM: a Pod Identity role that may read exactly the secrets passed in (GetSecretValue/DescribeSecret
on their ARNs, plus KMS decrypt if they use a customer key): stacks/inference_stack.py passes the named
API keys, Open WebUI's two secrets, the Ray token and the optional HF token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from aws_cdk import Duration, aws_eks_v2 as eks, aws_secretsmanager as sm
from constructs import Construct

from config.names import CORE_NODE_ROLE, NODE_ROLE_LABEL
from config.versions import EXTERNAL_SECRETS_CHART_REPO, EXTERNAL_SECRETS_VERSION
from platform_constructs.addons.helm_addon import HelmAddOnProps, helm_chart
from platform_constructs.addons.pod_identity import pod_identity_role
from platform_constructs.nag import acknowledge, wildcard_resource_findings


@dataclass(frozen=True, kw_only=True)
class ExternalSecretsProps(HelmAddOnProps):
    chart: str = "external-secrets"
    repository: str = EXTERNAL_SECRETS_CHART_REPO
    version: str = EXTERNAL_SECRETS_VERSION
    namespace: str = "external-secrets"
    release: str = "external-secrets"
    service_account: str = "external-secrets"
    node_selector: Mapping[str, str] = field(default_factory=lambda: {NODE_ROLE_LABEL: CORE_NODE_ROLE})
    # The Secrets Manager secrets the operator may read (its Pod Identity role's only grants).
    readable_secrets: Sequence[sm.ISecret] = ()


class ExternalSecretsAddOn(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: ExternalSecretsProps) -> None:
        super().__init__(scope, id)
        self.props = props
        readable_secrets = list(props.readable_secrets)
        self.role = pod_identity_role(self, "Role", description="External Secrets Operator: read the inference secrets",
                                      cluster=cluster)
        for secret in readable_secrets:
            secret.grant_read(self.role)
        # An imported-by-name secret's ARN ends in a 6-character wildcard (Secrets Manager's random suffix).
        arns = [s.secret_arn for s in readable_secrets]
        acknowledge(self.role, wildcard_resource_findings(
            self.role, arns, "Secrets Manager adds a random 6-character suffix to a secret's ARN; the "
                             "wildcard matches only that suffix of this one secret name."))
        self.pod_identity = eks.CfnPodIdentityAssociation(
            self, "PodIdentity", cluster_name=cluster.cluster_name, namespace=props.namespace,
            service_account=props.service_account, role_arn=self.role.role_arn,
        )
        node_selector = dict(props.node_selector)
        small = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
        self.values = props.merged_values({
            "installCRDs": True,
            "serviceAccount": {"create": True, "name": props.service_account},
            "nodeSelector": node_selector,
            "resources": small,
            "webhook": {"nodeSelector": node_selector, "resources": small},
            "certController": {"nodeSelector": node_selector, "resources": small},
        })
        self.chart = helm_chart(
            self, "Chart", cluster=cluster, props=props, values=self.values,
            create_namespace=True, wait=True, timeout=Duration.minutes(10),
        )
        # Credentials must exist before the controller's first reconcile.
        self.chart.node.add_dependency(self.pod_identity)
