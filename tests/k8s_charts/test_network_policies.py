"""NetworkPolicies evaluated like a CNI would: who may reach which port of which pod."""

from __future__ import annotations

import pytest

from config import names
from tests.support.charts import docs

RAY = {"app.kubernetes.io/name": names.RAYSERVICE_NAME, "app.kubernetes.io/part-of": "llama3-inf2"}
HEAD = {**RAY, "ray.io/node-type": "head"}
WORKER = {**RAY, "ray.io/node-type": "worker"}
WEBUI = {"app": "open-webui"}


def _matches(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are evaluated here"
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _peer_matches(peer: dict, src_ns: str, src_labels: dict, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        return False
    ns_ok = _matches(peer["namespaceSelector"], {"kubernetes.io/metadata.name": src_ns}) if "namespaceSelector" in peer else src_ns == policy_ns
    pod_ok = _matches(peer.get("podSelector", {}), src_labels)
    return ns_ok and pod_ok


def allowed(policies, src_ns, src_labels, dst_ns, dst_labels, port) -> bool:
    selecting = [p for p in policies if p["metadata"]["namespace"] == dst_ns
                 and "Ingress" in p["spec"].get("policyTypes", ["Ingress"]) and _matches(p["spec"]["podSelector"], dst_labels)]
    if not selecting:
        return True  # no policy isolates the pod
    for p in selecting:
        for rule in p["spec"].get("ingress") or []:
            ports = rule.get("ports") or []
            if ports and not any(pp.get("port") == port and pp.get("protocol", "TCP") == "TCP" for pp in ports):
                continue
            peers = rule.get("from")
            if not peers or any(_peer_matches(peer, src_ns, src_labels, dst_ns) for peer in peers):
                return True
    return False


@pytest.fixture(scope="module")
def policies(synthesized):
    return [d for d in docs(synthesized["env-dev"][1]) if d["kind"] == "NetworkPolicy"]


@pytest.fixture(scope="module")
def policies_with_ingress(synthesized):
    return [d for d in docs(synthesized["dev-hf-ingress"][1]) if d["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("dst", [HEAD, WORKER])
def test_webui_reaches_only_the_serve_port(policies, dst):
    assert allowed(policies, "openai-webui", WEBUI, "vllm", dst, 8000)
    for port in (6379, 8265, 10001, 8080, 52365):
        assert not allowed(policies, "openai-webui", WEBUI, "vllm", dst, port), port


@pytest.mark.parametrize("port", [8000, 8265, 6379, 10001])
def test_other_namespaces_and_other_webui_pods_are_denied(policies, port):
    assert not allowed(policies, "default", {}, "vllm", HEAD, port)
    assert not allowed(policies, "openai-webui", {"app": "something-else"}, "vllm", HEAD, port)
    assert not allowed(policies, "ingress-nginx", {}, "vllm", HEAD, port)


@pytest.mark.parametrize("port", [6379, 8265, 10001, 8000, 12345])
def test_ray_ports_open_inside_vllm(policies, port):
    assert allowed(policies, "vllm", WORKER, "vllm", HEAD, port)
    assert allowed(policies, "vllm", HEAD, "vllm", WORKER, port)


def test_kuberay_operator_reaches_only_the_head_dashboard(policies):
    assert allowed(policies, names.KUBERAY_NAMESPACE, {}, "vllm", HEAD, 8265)
    assert not allowed(policies, names.KUBERAY_NAMESPACE, {}, "vllm", WORKER, 8265)
    assert not allowed(policies, names.KUBERAY_NAMESPACE, {}, "vllm", HEAD, 6379)


def test_metrics_scraper_reaches_only_metrics(policies):
    assert allowed(policies, "amazon-cloudwatch", {}, "vllm", WORKER, 8080)
    assert not allowed(policies, "amazon-cloudwatch", {}, "vllm", WORKER, 8265)


def test_webui_not_reachable_from_other_pods_without_ingress(policies):
    assert not allowed(policies, "vllm", HEAD, "openai-webui", WEBUI, 8080)
    assert not allowed(policies, "ingress-nginx", {}, "openai-webui", WEBUI, 8080)


def test_ingress_namespace_when_enabled(policies_with_ingress):
    p = policies_with_ingress
    assert allowed(p, "ingress-nginx", {}, "openai-webui", WEBUI, 8080)
    assert allowed(p, "ingress-nginx", {}, "vllm", HEAD, 8000)
    assert not allowed(p, "ingress-nginx", {}, "vllm", HEAD, 8265)


def test_evaluator_bites():
    """The evaluator itself: a pod without policies is open, a deny-all closes it."""
    deny = {"metadata": {"namespace": "vllm"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    assert allowed([], "x", {}, "vllm", HEAD, 8265)
    assert not allowed([deny], "x", {}, "vllm", HEAD, 8265)


def test_kuberay_reaches_the_head_serve_port_exactly_when_the_head_serves(synthesized, policies):
    """KubeRay 1.7 GETs <head IP>:8000/-/healthz unless excludeHeadPodFromServeSvc (updateHeadPodServeLabel)."""
    from tests.support.charts import find
    head_serves = not find(synthesized["env-dev"][1], "RayService")["spec"].get("excludeHeadPodFromServeSvc", False)
    assert allowed(policies, names.KUBERAY_NAMESPACE, {}, "vllm", HEAD, 8000) == head_serves, (
        "the operator must reach the head's serve port iff the head is in the serve Service")
    assert not head_serves  # the chart's choice (docs/charts.md): the head takes no serve traffic


@pytest.mark.parametrize("head_serves", [True, False])
def test_kuberay_ports_follow_the_head_choice(head_serves):
    from k8s_charts.network_policies import kuberay_ports
    assert (8000 in kuberay_ports(head_serves)) == head_serves and 8265 in kuberay_ports(head_serves)
