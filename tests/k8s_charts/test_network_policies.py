"""NetworkPolicies evaluated like a CNI would: who may reach which port of which pod."""

from __future__ import annotations

import pytest

from config import names
from tests.support.charts import docs

# The labels KubeRay 1.7 gives the RayService's pods (tests/cluster_box/kuberay.py pod_labels, labelPod).
from tests.cluster_box.kuberay import pod_labels  # noqa: E402

TEMPLATE = {"app.kubernetes.io/name": names.RAYSERVICE_NAME, "app.kubernetes.io/part-of": "llama3-inf2"}
HEAD = pod_labels("head", "vllm-llama3-inf2-abcde", "headgroup", TEMPLATE)
WORKER = pod_labels("worker", "vllm-llama3-inf2-abcde", "neuron-group", TEMPLATE)
WEBUI = {"app": "open-webui"}
SMOKE = {"app.kubernetes.io/name": "smoke-test", "batch.kubernetes.io/job-name": "smoke-1", "job-name": "smoke-1"}
RAY_PORTS = (6379, 8265, 10001, 52365, 8080)


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


def test_webui_reaches_only_the_serve_port_of_the_workers(policies):
    assert allowed(policies, "openai-webui", WEBUI, "vllm", WORKER, 8000)
    for dst in (HEAD, WORKER):
        for port in (6379, 8265, 10001, 8080, 52365) + ((8000,) if dst is HEAD else ()):
            assert not allowed(policies, "openai-webui", WEBUI, "vllm", dst, port), (dst["ray.io/node-type"], port)


@pytest.mark.parametrize("port", [8000, 8265, 6379, 10001])
def test_other_namespaces_and_other_webui_pods_are_denied(policies, port):
    assert not allowed(policies, "default", {}, "vllm", HEAD, port)
    assert not allowed(policies, "openai-webui", {"app": "something-else"}, "vllm", HEAD, port)
    assert not allowed(policies, "ingress-nginx", {}, "vllm", HEAD, port)


@pytest.mark.parametrize("port", [6379, 8265, 10001, 8000, 12345])
def test_ray_ports_open_between_the_ray_pods(policies, port):
    assert allowed(policies, "vllm", WORKER, "vllm", HEAD, port)
    assert allowed(policies, "vllm", HEAD, "vllm", WORKER, port)
    assert allowed(policies, "vllm", WORKER, "vllm", WORKER, port)  # a second worker


@pytest.mark.parametrize("src", [{}, {"app": "debug"}, TEMPLATE, SMOKE], ids=["unlabelled", "debug", "app-labels-only", "smoke"])
def test_other_vllm_pods_cannot_reach_rays_ports(policies, src):
    """The old `ray-intra-namespace` let any pod of the namespace reach every port (ShadowRay). Now only
    the Ray pods reach GCS, the dashboard, the client port, the agent and metrics; copying our template
    labels without KubeRay's ray.io/is-ray-node is not enough."""
    for dst in (HEAD, WORKER):
        for port in RAY_PORTS:
            assert not allowed(policies, "vllm", src, "vllm", dst, port), (src, dst["ray.io/node-type"], port)


def test_smoke_job_reaches_only_the_workers_serve_port(policies):
    assert allowed(policies, "vllm", SMOKE, "vllm", WORKER, 8000)
    assert not allowed(policies, "vllm", SMOKE, "vllm", HEAD, 8000)  # the head is not a serve backend
    assert not allowed(policies, "vllm", {"app": "debug"}, "vllm", WORKER, 8000)


def test_smoke_labels_are_the_jobs():
    """The policy admits the labels the smoke Lambda actually puts on its Job's pods."""
    from k8s_charts.network_policies import SMOKE_JOB_LABELS
    from platform_constructs import smoke_test
    from platform_constructs.smoke_test.runtime.runner import job_manifest
    job = job_manifest("j", namespace="vllm", configmap="c", image="i", base_url="u", model="m",
                       api_key_secret="s", api_key_secret_key="k", deadline_seconds=1)
    assert SMOKE_JOB_LABELS.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    assert SMOKE_JOB_LABELS == {"app.kubernetes.io/name": smoke_test.CONFIGMAP} == {"app.kubernetes.io/name": names.SMOKE_TEST_NAME}
    assert job["metadata"]["namespace"] == names.VLLM_NAMESPACE


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
    assert allowed(p, "ingress-nginx", {}, "vllm", WORKER, 8000)
    assert not allowed(p, "ingress-nginx", {}, "vllm", HEAD, 8000)  # the head is not a serve backend
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
