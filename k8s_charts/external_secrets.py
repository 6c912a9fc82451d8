"""External Secrets Operator objects: Secrets Manager -> Kubernetes Secrets, values never in a manifest.

The ClusterSecretStore authenticates with the ESO controller's own credentials (EKS Pod Identity; its
role may read only this environment's secrets, see platform_constructs/addons/external_secrets.py) and
serves only the namespaces listed in its conditions, so no other namespace can pull these secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
import cdk8s
from constructs import Construct

from config.project import MANAGED_BY_LABELS
from config.secrets import CLUSTER_SECRET_STORE, SECRET_REFRESH_INTERVAL
from config.versions import EXTERNAL_SECRETS_API_VERSION
from k8s_charts.objects import custom_resource


@dataclass(frozen=True)
class SecretSync:
    """One Kubernetes Secret filled from one Secrets Manager secret (its plain-text value)."""
    namespace: str
    k8s_secret: str  # name of the Kubernetes Secret ESO creates and owns
    key: str  # key inside the Kubernetes Secret
    secrets_manager_name: str  # name or ARN in Secrets Manager


def cluster_secret_store(scope: Construct, region: str, namespaces: list[str]) -> cdk8s.ApiObject:
    return custom_resource(scope, "cluster-secret-store", {
        "apiVersion": EXTERNAL_SECRETS_API_VERSION, "kind": "ClusterSecretStore",
        "metadata": {"name": CLUSTER_SECRET_STORE, "labels": MANAGED_BY_LABELS},
        "spec": {
            # Only these namespaces may reference the store.
            "conditions": [{"namespaces": sorted(namespaces)}],
            # No `auth`: ESO uses its controller's Pod Identity credentials.
            "provider": {"aws": {"service": "SecretsManager", "region": region}},
        },
    })


def external_secret(scope: Construct, sync: SecretSync) -> cdk8s.ApiObject:
    return custom_resource(scope, f"external-secret-{sync.namespace}-{sync.k8s_secret}", {
        "apiVersion": EXTERNAL_SECRETS_API_VERSION, "kind": "ExternalSecret",
        "metadata": {"name": sync.k8s_secret, "namespace": sync.namespace, "labels": MANAGED_BY_LABELS},
        "spec": {
            "refreshInterval": SECRET_REFRESH_INTERVAL,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": CLUSTER_SECRET_STORE},
            # Owner: the Secret is deleted with the ExternalSecret; no stray copy survives a teardown.
            "target": {"name": sync.k8s_secret, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
            "data": [{"secretKey": sync.key, "remoteRef": {"key": sync.secrets_manager_name}}],
        },
    })
