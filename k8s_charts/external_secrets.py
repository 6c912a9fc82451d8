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
class SecretEntry:
    """One key of a Kubernetes Secret: a Secrets Manager secret's whole value, or one field of its JSON."""
    key: str  # key inside the Kubernetes Secret
    secrets_manager_name: str  # name or ARN in Secrets Manager
    property: str | None = None  # a top-level JSON field of the value (ESO remoteRef.property); None: all

    def to_manifest(self) -> dict:
        ref = {"key": self.secrets_manager_name}
        if self.property is not None:
            ref["property"] = self.property
        return {"secretKey": self.key, "remoteRef": ref}


@dataclass(frozen=True)
class SecretSync:
    """One Kubernetes Secret filled from Secrets Manager, one entry per data key."""
    namespace: str
    k8s_secret: str  # name of the Kubernetes Secret ESO creates and owns
    entries: tuple[SecretEntry, ...]

    def __post_init__(self) -> None:
        keys = [e.key for e in self.entries]
        if not keys or len(set(keys)) != len(keys):
            raise ValueError(f"Secret {self.namespace}/{self.k8s_secret}: data keys must be present and unique, got {keys}")

    @classmethod
    def single(cls, namespace: str, k8s_secret: str, key: str, secrets_manager_name: str,
               property: str | None = None) -> "SecretSync":
        return cls(namespace, k8s_secret, (SecretEntry(key, secrets_manager_name, property),))


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
            # A rotation (docs/security.md) reaches the Secret within this interval; the API keys' mounted
            # files follow within the kubelet's sync period and the serving app re-reads them itself.
            "refreshInterval": SECRET_REFRESH_INTERVAL,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": CLUSTER_SECRET_STORE},
            # Owner: the Secret is deleted with the ExternalSecret; no stray copy survives a teardown.
            "target": {"name": sync.k8s_secret, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
            "data": [entry.to_manifest() for entry in sync.entries],
        },
    })
