"""External Secrets Operator (Helm, pinned): syncs Secrets Manager secrets into Kubernetes Secrets.

Chosen over the Secrets Store CSI driver because the consumers (vLLM, Open WebUI) read their keys from
environment variables, which a synced Kubernetes Secret gives directly; the CSI driver only syncs a
Secret while some pod mounts its volume. IAM: a Pod Identity role that may read exactly the secrets
passed in (GetSecretValue/DescribeSecret on their ARNs, plus KMS decrypt if they use a customer key).
"""

from __future__ import annotations

from aws_cdk import Duration, aws_eks_v2 as eks, aws_secretsmanager as sm
from constructs import Construct

from config.versions import EXTERNAL_SECRETS_CHART_REPO, EXTERNAL_SECRETS_VERSION
from platform_constructs.addons.pod_identity import pod_identity_role
from platform_constructs.nag import acknowledge, wildcard_resource_findings

NAMESPACE = "external-secrets"
SERVICE_ACCOUNT = "external-secrets"


class ExternalSecretsOperator(Construct):
    def __init__(
        self, scope: Construct, id: str, *, cluster: eks.ICluster, core_node_selector: dict[str, str],
        readable_secrets: list[sm.ISecret],
    ) -> None:
        super().__init__(scope, id)
        self.role = pod_identity_role(self, "Role", description="External Secrets Operator: read the inference secrets")
        for secret in readable_secrets:
            secret.grant_read(self.role)
        # An imported-by-name secret's ARN ends in a 6-character wildcard (Secrets Manager's random suffix).
        arns = [s.secret_arn for s in readable_secrets]
        acknowledge(self.role, wildcard_resource_findings(
            self.role, arns, "Secrets Manager adds a random 6-character suffix to a secret's ARN; the "
                             "wildcard matches only that suffix of this one secret name."))
        self.pod_identity = eks.CfnPodIdentityAssociation(
            self, "PodIdentity", cluster_name=cluster.cluster_name, namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT, role_arn=self.role.role_arn,
        )
        small = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
        self.values = {
            "installCRDs": True,
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            "nodeSelector": core_node_selector,
            "resources": small,
            "webhook": {"nodeSelector": core_node_selector, "resources": small},
            "certController": {"nodeSelector": core_node_selector, "resources": small},
        }
        self.chart = eks.HelmChart(
            self, "Chart", cluster=cluster, chart="external-secrets", repository=EXTERNAL_SECRETS_CHART_REPO,
            version=EXTERNAL_SECRETS_VERSION, namespace=NAMESPACE, create_namespace=True,
            release="external-secrets", values=self.values, wait=True, timeout=Duration.minutes(10),
        )
        # Credentials must exist before the controller's first reconcile.
        self.chart.node.add_dependency(self.pod_identity)
