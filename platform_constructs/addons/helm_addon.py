"""What every Helm add-on shares (cdk-eks-blueprints' HelmAddOnProps): the chart coordinates as props.

An add-on's props subclass HelmAddOnProps and default each field from config/versions.py (repository,
version) and config/names.py (namespace); `values` are the caller's overrides, deep-merged over the
values the add-on computes itself (empty by default: the add-on's own values as they are).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct


@dataclass(frozen=True, kw_only=True)
class HelmAddOnProps:
    chart: str
    repository: str
    version: str
    namespace: str
    release: str
    values: Mapping[str, Any] = field(default_factory=dict)  # overrides of the add-on's own values

    def merged_values(self, own: Mapping[str, Any]) -> dict[str, Any]:
        """The add-on's own values with `values` deep-merged in."""
        return merge_values(own, self.values)


def merge_values(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` deep-merged in (mappings merge key by key; anything else replaces)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def helm_chart(scope: Construct, id: str, *, cluster: eks.ICluster, props: HelmAddOnProps,
               values: Mapping[str, Any] | None, **options: Any) -> eks.HelmChart:
    """An eks.HelmChart of `props`' chart with `values` (props.merged_values(...)); `options` are
    HelmChart's other settings (create_namespace, wait, timeout...)."""
    return eks.HelmChart(
        scope, id, cluster=cluster, chart=props.chart, repository=props.repository, version=props.version,
        namespace=props.namespace, release=props.release, values=values, **options,
    )
