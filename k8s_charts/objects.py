"""How the charts write a Kubernetes object: one chart base, one Namespace, one way to emit a custom resource.

- Core kinds (Namespace, Deployment, Service, PVC, NetworkPolicy) are cdk8s-plus constructs: typed,
  and cdk8s-plus fills selectors and defaults the same way everywhere.
- Custom resources (RayService, ExternalSecret, ClusterSecretStore) have no cdk8s-plus class; their
  manifest dict (from a typed builder such as k8s_charts/rayservice.py, or a small function) becomes
  an ApiObject through `custom_resource`, never by hand.
- Labels every object carries and the security context of every container come from
  config/kubernetes.py, which the CDK constructs that write Kubernetes objects share.
docs/charts.md "Writing Kubernetes objects" says the same for a newcomer.
"""

from __future__ import annotations

from typing import Any

import cdk8s
import cdk8s_plus_27 as kplus
from constructs import Construct

from config.project import PART_OF_LABELS

_TOP_LEVEL = ("apiVersion", "kind", "metadata")


class PlatformChart(cdk8s.Chart):
    """A chart of this platform: every object in it carries the project's `part-of` label."""

    def __init__(self, scope: Construct, id: str, *, namespace: str | None = None) -> None:
        super().__init__(scope, id, namespace=namespace, labels=dict(PART_OF_LABELS))


def namespace(chart: cdk8s.Chart, name: str, labels: dict[str, str] | None = None) -> kplus.Namespace:
    ns = kplus.Namespace(chart, "namespace", metadata=cdk8s.ApiObjectMetadata(name=name, labels=labels or {}))
    # A Namespace is cluster-scoped: drop the chart's default namespace from its metadata.
    cdk8s.ApiObject.of(ns).add_json_patch(cdk8s.JsonPatch.remove("/metadata/namespace"))
    return ns


def custom_resource(scope: Construct, id: str, manifest: dict[str, Any]) -> cdk8s.ApiObject:
    """A custom resource from its manifest: apiVersion, kind and metadata as ApiObject props, every
    other top-level field (spec, ...) added as it is."""
    obj = cdk8s.ApiObject(scope, id, api_version=manifest["apiVersion"], kind=manifest["kind"],
                          metadata=cdk8s.ApiObjectMetadata(**manifest["metadata"]))
    for key, value in manifest.items():
        if key not in _TOP_LEVEL:
            obj.add_json_patch(cdk8s.JsonPatch.add(f"/{key}", value))
    return obj
