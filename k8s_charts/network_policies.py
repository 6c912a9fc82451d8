"""NetworkPolicies: only the serve port leaves the `vllm` namespace; the Ray dashboard never does.

An unauthenticated Ray dashboard (8265), GCS (6379) or client port (10001) is remote code execution for
whoever reaches it. Every pod in `vllm` denies ingress by default; Ray pods accept any port from their
own namespace (Ray's internal ports are many and dynamic), port 8000 from Open WebUI (and an ingress
controller if one is configured), 8265 from the KubeRay operator (it deploys the Serve config through
the dashboard API; plus 8000 only if the head takes serve traffic, because KubeRay then health-checks
the head's proxy at <head IP>:8000/-/healthz) and 8080 from the CloudWatch agent (Prometheus metrics).
Egress is left open: workers download the model and talk to AWS APIs.
"""

from __future__ import annotations

import cdk8s
import cdk8s_plus_27 as kplus
from constructs import Construct

from config import names

WEBUI_POD_LABELS = {"app": names.WEBUI_SERVICE_NAME}
RAY_HEAD_LABELS = {"ray.io/node-type": "head"}  # set by KubeRay on head pods


def _name(name: str) -> cdk8s.ApiObjectMetadata:
    return cdk8s.ApiObjectMetadata(name=name)


def _deny_all(scope: Construct) -> kplus.NetworkPolicy:
    return kplus.NetworkPolicy(
        scope, "default-deny-ingress", metadata=_name("default-deny-ingress"),
        selector=kplus.Pods.all(scope, "all-pods"),
        ingress=kplus.NetworkPolicyTraffic(default=kplus.NetworkPolicyTrafficDefault.DENY),
    )


def _from_namespace(scope: Construct, id: str, namespace: str, labels: dict[str, str] | None = None) -> kplus.Pods:
    return kplus.Pods.select(scope, id, labels=labels, namespaces=kplus.Namespaces.select(scope, f"{id}-ns", names=[namespace]))


def kuberay_ports(head_serves: bool) -> list[int]:
    """Head ports the KubeRay 1.7 operator calls: the dashboard API (serve config, app status) always;
    the serve port's /-/healthz only when the head is in the serve Service (not excludeHeadPodFromServeSvc)."""
    return [names.RAY_DASHBOARD_PORT] + ([names.SERVE_PORT] if head_serves else [])


def ray_network_policies(scope: Construct, ray_labels: dict[str, str], ingress_namespace: str | None,
                         head_serves: bool) -> None:
    _deny_all(scope)
    ray_pods = kplus.Pods.select(scope, "ray-pods", labels=ray_labels)
    same_namespace = kplus.Pods.all(scope, "vllm-pods")

    kplus.NetworkPolicy(
        scope, "ray-intra-namespace", metadata=_name("ray-intra-namespace"), selector=ray_pods,
        ingress=kplus.NetworkPolicyTraffic(
            default=kplus.NetworkPolicyTrafficDefault.DENY,
            rules=[kplus.NetworkPolicyRule(peer=same_namespace)],
        ),
    )

    serve_peers = [_from_namespace(scope, "webui-pods", names.WEBUI_NAMESPACE, WEBUI_POD_LABELS)]
    if ingress_namespace:
        serve_peers.append(_from_namespace(scope, "ingress-pods", ingress_namespace))
    kplus.NetworkPolicy(
        scope, "ray-serve-port", metadata=_name("ray-serve-port"), selector=ray_pods,
        ingress=kplus.NetworkPolicyTraffic(
            default=kplus.NetworkPolicyTrafficDefault.DENY,
            rules=[kplus.NetworkPolicyRule(peer=peer, ports=[kplus.NetworkPolicyPort.tcp(names.SERVE_PORT)])
                   for peer in serve_peers],
        ),
    )

    kplus.NetworkPolicy(
        scope, "ray-dashboard-from-kuberay", metadata=_name("ray-dashboard-from-kuberay"),
        selector=kplus.Pods.select(scope, "ray-head", labels={**ray_labels, **RAY_HEAD_LABELS}),
        ingress=kplus.NetworkPolicyTraffic(
            default=kplus.NetworkPolicyTrafficDefault.DENY,
            rules=[kplus.NetworkPolicyRule(
                peer=_from_namespace(scope, "kuberay-operator", names.KUBERAY_NAMESPACE),
                ports=[kplus.NetworkPolicyPort.tcp(port) for port in kuberay_ports(head_serves)],
            )],
        ),
    )

    kplus.NetworkPolicy(
        scope, "ray-metrics-scrape", metadata=_name("ray-metrics-scrape"), selector=ray_pods,
        ingress=kplus.NetworkPolicyTraffic(
            default=kplus.NetworkPolicyTrafficDefault.DENY,
            rules=[kplus.NetworkPolicyRule(
                peer=_from_namespace(scope, "cloudwatch-agent", names.CLOUDWATCH_NAMESPACE),
                ports=[kplus.NetworkPolicyPort.tcp(names.RAY_METRICS_PORT)],
            )],
        ),
    )


def webui_network_policies(scope: Construct, webui_labels: dict[str, str], ingress_namespace: str | None) -> None:
    _deny_all(scope)
    if ingress_namespace:
        kplus.NetworkPolicy(
            scope, "webui-from-ingress", metadata=_name("webui-from-ingress"),
            selector=kplus.Pods.select(scope, "webui-pods", labels=webui_labels),
            ingress=kplus.NetworkPolicyTraffic(
                default=kplus.NetworkPolicyTrafficDefault.DENY,
                rules=[kplus.NetworkPolicyRule(
                    peer=_from_namespace(scope, "ingress-pods", ingress_namespace),
                    ports=[kplus.NetworkPolicyPort.tcp(names.WEBUI_PORT)],
                )],
            ),
        )
