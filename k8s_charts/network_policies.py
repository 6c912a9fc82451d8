"""NetworkPolicies: only the serve port leaves the `vllm` namespace; Ray's control plane stays with Ray.

An unauthenticated Ray dashboard (8265, its Jobs API runs code), GCS (6379) or client port (10001) is
remote code execution for whoever reaches it (the ShadowRay class, CVE-2023-48022); Ray token auth is on
as well (vllm_chart.py authOptions), these policies are the network half. Every pod in `vllm` denies
ingress by default. The Ray pods (selected by their labels, `ray_labels`) accept:
- every port from the Ray pods themselves (Ray's internal ports are many and dynamic): no other pod of
  the namespace, such as the smoke Job or a debugging pod, reaches GCS, the dashboard or the client port;
- the serve port (8000) on the serve Service's backends, the workers (the head too only if it serves),
  from Open WebUI, the smoke Job's pods (names.SMOKE_TEST_NAME), an ingress controller if configured,
  and the ALB (issue 13) by the VPC's primary CIDR;
- the dashboard (8265) on the head from the KubeRay operator (it deploys the Serve config and reads the
  app status through the dashboard API; plus 8000 only if the head takes serve traffic, because KubeRay
  then health-checks the head's proxy at <head IP>:8000/-/healthz);
- the metrics port (8080) from the CloudWatch agent's namespace (Prometheus scrape).
Labels are only as strong as the right to create pods in `vllm` (RBAC), which is why Ray's token auth is
on too. Egress stays open: the workers download the model from the Hugging Face hub (no fixed IPs).
"""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
import cdk8s_plus_27 as kplus
from constructs import Construct

from config import names
from config.kubernetes import name_label

WEBUI_POD_LABELS = {"app": names.WEBUI_SERVICE_NAME}
RAY_HEAD_LABELS = {"ray.io/node-type": "head"}  # set by KubeRay on head pods
RAY_WORKER_LABELS = {"ray.io/node-type": "worker"}  # and on worker pods
# The smoke test's Job pods (platform_constructs/smoke_test/runtime/runner.py job_manifest labels).
SMOKE_JOB_LABELS = name_label(names.SMOKE_TEST_NAME)


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


def _ingress(scope: Construct, name: str, selector: kplus.Pods, rules: list[kplus.NetworkPolicyRule]) -> kplus.NetworkPolicy:
    return kplus.NetworkPolicy(
        scope, name, metadata=_name(name), selector=selector,
        ingress=kplus.NetworkPolicyTraffic(default=kplus.NetworkPolicyTrafficDefault.DENY, rules=rules),
    )


def ray_network_policies(scope: Construct, ray_labels: dict[str, str], ingress_namespace: str | None,
                         head_serves: bool, alb_cidr: str | None = None) -> None:
    _deny_all(scope)
    ray_pods = kplus.Pods.select(scope, "ray-pods", labels=ray_labels)
    # Ray to Ray on every port: the peer is the same selector, so only this RayService's pods match.
    _ingress(scope, "ray-cluster-internal", ray_pods,
             [kplus.NetworkPolicyRule(peer=kplus.Pods.select(scope, "ray-peers", labels=ray_labels))])

    serve_peers = [
        _from_namespace(scope, "webui-pods", names.WEBUI_NAMESPACE, WEBUI_POD_LABELS),
        kplus.Pods.select(scope, "smoke-job-pods", labels=SMOKE_JOB_LABELS),
    ]
    if ingress_namespace:
        serve_peers.append(_from_namespace(scope, "ingress-pods", ingress_namespace))
    if alb_cidr:
        # The ALB (target type ip) connects from its ENIs in the VPC's primary subnets; the nodes and
        # their pods sit in the secondary range's subnets (stacks/network_stack.py), so the primary CIDR
        # is the ALB, the control plane's ENIs and the NAT gateways -- not other pods or nodes. The ALB's source IPs are not
        # fixed, so the CIDR is the narrowest peer NetworkPolicy can name.
        serve_peers.append(kplus.NetworkPolicyIpBlock.ipv4(scope, "alb-subnets", alb_cidr))
    # The serve Service's backends: the workers, and the head only if it is in the Service.
    serve_backends = ray_pods if head_serves else kplus.Pods.select(
        scope, "ray-workers", labels={**ray_labels, **RAY_WORKER_LABELS})
    _ingress(scope, "ray-serve-port", serve_backends,
             [kplus.NetworkPolicyRule(peer=peer, ports=[kplus.NetworkPolicyPort.tcp(names.SERVE_PORT)])
              for peer in serve_peers])

    _ingress(scope, "ray-dashboard-from-kuberay",
             kplus.Pods.select(scope, "ray-head", labels={**ray_labels, **RAY_HEAD_LABELS}),
             [kplus.NetworkPolicyRule(
                 peer=_from_namespace(scope, "kuberay-operator", names.KUBERAY_NAMESPACE),
                 ports=[kplus.NetworkPolicyPort.tcp(port) for port in kuberay_ports(head_serves)],
             )])

    _ingress(scope, "ray-metrics-scrape", ray_pods,
             [kplus.NetworkPolicyRule(
                 peer=_from_namespace(scope, "cloudwatch-agent", names.CLOUDWATCH_NAMESPACE),
                 ports=[kplus.NetworkPolicyPort.tcp(names.RAY_METRICS_PORT)],
             )])


@dataclass(frozen=True)
class OidcAlbPeers:
    """Open WebUI's peers when it is published behind OIDC: the ALB's CIDR, and the ranges that are not
    the IdP (the cluster's own, IMDS) which its HTTPS egress must still not reach."""
    alb_cidr: str
    not_idp_cidrs: tuple[str, ...]


# The node's instance metadata service and other link-local addresses: never an IdP.
LINK_LOCAL_CIDR = "169.254.0.0/16"


def webui_network_policies(scope: Construct, webui_labels: dict[str, str], ingress_namespace: str | None,
                           ray_labels: dict[str, str], oidc_alb: OidcAlbPeers | None = None) -> None:
    """Ingress: only the ingress controller (if any) and, with OIDC, the ALB to 8080. Egress: only the Ray
    workers (`ray_labels`, in `vllm`) on the serve port, DNS and, with OIDC, the IdP on 443."""
    _deny_all(scope)
    _webui_egress(scope, ray_labels, oidc_alb)
    peers = []
    if ingress_namespace:
        peers.append(_from_namespace(scope, "ingress-pods", ingress_namespace))
    if oidc_alb:
        # The ALB's ENIs, by the VPC's primary CIDR (see ray_network_policies).
        peers.append(kplus.NetworkPolicyIpBlock.ipv4(scope, "alb-subnets", oidc_alb.alb_cidr))
    if peers:
        kplus.NetworkPolicy(
            scope, "webui-from-ingress", metadata=_name("webui-from-ingress"),
            selector=kplus.Pods.select(scope, "webui-pods", labels=webui_labels),
            ingress=kplus.NetworkPolicyTraffic(
                default=kplus.NetworkPolicyTrafficDefault.DENY,
                rules=[kplus.NetworkPolicyRule(peer=peer, ports=[kplus.NetworkPolicyPort.tcp(names.WEBUI_PORT)])
                       for peer in peers],
            ),
        )


def _webui_egress(scope: Construct, ray_labels: dict[str, str], oidc_alb: OidcAlbPeers | None) -> None:
    """Every pod of the namespace may open connections only to the serve port and to cluster DNS:
    Open WebUI needs nothing else (OFFLINE_MODE, embeddings bypassed, config/webui.py), and a
    compromised or admin-abused instance (admins run Python) cannot reach Ray's ports, the node's IMDS,
    the API server or the internet. NetworkPolicy sees the pod IPs behind the Service (after kube-proxy's
    DNAT), so the peers are the serve Service's backends: the workers, since the head is excluded from
    it (vllm_chart.py HEAD_SERVES_TRAFFIC; tests/k8s_charts/test_webui.py fails if that changes)."""
    workers = {**ray_labels, **RAY_WORKER_LABELS}
    rules = [kplus.NetworkPolicyRule(
        peer=_from_namespace(scope, "serve-pods", names.VLLM_NAMESPACE, workers),
        ports=[kplus.NetworkPolicyPort.tcp(names.SERVE_PORT)],
    )]
    # CoreDNS on EKS: Deployment `coredns` in kube-system, pods labelled k8s-app=kube-dns (the EKS
    # add-on keeps the upstream kube-dns label); UDP for queries, TCP for truncated answers.
    dns = _from_namespace(scope, "cluster-dns", "kube-system", {"k8s-app": "kube-dns"})
    rules.append(kplus.NetworkPolicyRule(peer=dns, ports=[kplus.NetworkPolicyPort.udp(53), kplus.NetworkPolicyPort.tcp(53)]))
    if oidc_alb:
        # Open WebUI's OIDC client calls the IdP (discovery, token, userinfo, JWKS): HTTPS to the internet,
        # whose addresses are not fixed -- but not to the cluster's own ranges or the node's IMDS.
        idp = kplus.NetworkPolicyIpBlock.ipv4(scope, "oidc-idp", "0.0.0.0/0", except_=list(oidc_alb.not_idp_cidrs))
        rules.append(kplus.NetworkPolicyRule(peer=idp, ports=[kplus.NetworkPolicyPort.tcp(443)]))
    kplus.NetworkPolicy(
        scope, "webui-egress", metadata=_name("webui-egress"),
        selector=kplus.Pods.all(scope, "all-webui-namespace-pods"),
        egress=kplus.NetworkPolicyTraffic(default=kplus.NetworkPolicyTrafficDefault.DENY, rules=rules),
    )
