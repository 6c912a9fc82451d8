"""The box's own translators (no root, no Ray): KubeRay's command line and NetworkPolicies as iptables."""

from __future__ import annotations

import pytest

from config import presets
from tests.cluster_box import kuberay
from tests.cluster_box.netpol import BoxPod, UnsupportedPolicy, iptables_rules


def test_worker_command_is_kuberays_format():
    params = kuberay.start_params("worker", {"resources": "'{\"neuron_cores\":2}'"}, "10.0.0.1", autoscaling=True)
    cmd = kuberay.ray_start_command("worker", params, {"cpu": "30", "memory": "1Gi", "aws.amazon.com/neuron": "1"})
    # convertParamMap: sorted keys, " --key=value " each, booleans as bare flags (pod.go v1.7.0).
    assert cmd == ("ray start --address=10.0.0.1:6379  --block  --dashboard-agent-listen-port=52365  "
                   "--memory=1073741824  --metrics-export-port=8080  --num-cpus=30  --resources='{\"neuron_cores\":2}' ")
    assert kuberay.container_command(cmd)[:3] == ["/bin/bash", "-c", "--"]


def test_head_command_has_no_monitor_with_in_tree_autoscaling():
    params = kuberay.start_params("head", {"num-cpus": "0"}, None, autoscaling=True)
    cmd = kuberay.ray_start_command("head", params, {"cpu": "2", "memory": "8Gi"})
    assert cmd.startswith("ray start --head ") and " --no-monitor " in cmd and " --num-cpus=0 " in cmd


def test_worker_readiness_checks_its_own_proxy():
    probes = kuberay.probes("worker", {}, {}, "2.60.0")
    assert "localhost:8000/-/healthz" in probes["readiness"].exec_command[-1]
    assert probes["liveness"].http_path == "/api/healthz"
    assert kuberay.probes("head", {}, {}, "2.60.0")["readiness"].http_port == 52365


POD = BoxPod("head", "vllm", {"app": "ray"}, "10.123.0.10")
PEERS = [POD, BoxPod("webui", "openai-webui", {"app": "open-webui"}, "10.123.0.21")]


def _policy(spec):
    return {"metadata": {"namespace": "vllm", "name": "p"}, "spec": spec}


def test_unselected_pod_is_open_and_deny_all_drops():
    assert iptables_rules(POD, [], PEERS, "10.123.0.1") == []
    rules = iptables_rules(POD, [_policy({"podSelector": {}, "policyTypes": ["Ingress"]})], PEERS, "10.123.0.1")
    assert rules[-1] == ["-A", "INPUT", "-j", "DROP"]
    assert ["-A", "INPUT", "-s", "10.123.0.1", "-j", "ACCEPT"] in rules  # the node (kubelet probes)


def test_peer_by_namespace_and_labels_becomes_source_ip_and_port():
    rule = {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openai-webui"}},
                      "podSelector": {"matchLabels": {"app": "open-webui"}}}], "ports": [{"port": 8000, "protocol": "TCP"}]}
    rules = iptables_rules(POD, [_policy({"podSelector": {}, "ingress": [rule]})], PEERS, "10.123.0.1")
    assert ["-A", "INPUT", "-s", "10.123.0.21", "-p", "tcp", "--dport", "8000", "-j", "ACCEPT"] in rules


def test_an_ip_block_becomes_its_cidr_as_source():
    # The ALB's traffic (issue 13): the VPC's CIDR may reach the serve port, nothing else.
    rule = {"from": [{"ipBlock": {"cidr": "10.1.0.0/16"}}], "ports": [{"port": 8000, "protocol": "TCP"}]}
    rules = iptables_rules(POD, [_policy({"podSelector": {}, "ingress": [rule]})], PEERS, "10.123.0.1")
    assert ["-A", "INPUT", "-s", "10.1.0.0/16", "-p", "tcp", "--dport", "8000", "-j", "ACCEPT"] in rules
    assert rules[-1] == ["-A", "INPUT", "-j", "DROP"]


@pytest.mark.parametrize("bad", [
    {"podSelector": {"matchExpressions": []}},
    {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]},
    {"podSelector": {}, "ingress": [{"ports": [{"port": "serve"}]}]},
    {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}, "podSelector": {}}]}]},
    {"podSelector": {}, "ingress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]},
    {"podSelector": {}, "policyTypes": ["Ingress", "Sideways"]},
])
def test_unmodelled_policy_features_raise(bad):
    with pytest.raises(UnsupportedPolicy):
        iptables_rules(POD, [_policy(bad)], PEERS, "10.123.0.1")


def test_chart_knows_kuberays_init_container_requests():
    """config/node_fit sizing reads the worker pod's init containers from k8s_charts/vllm_chart.py."""
    from k8s_charts import vllm_chart
    init = kuberay.wait_gcs_ready({"image": "x"}, "10.0.0.1")
    assert init["resources"]["requests"] == {"cpu": presets.KUBERAY_WAIT_GCS_READY_CPU, "memory": presets.KUBERAY_WAIT_GCS_READY_MEMORY}


def test_egress_allows_only_listed_peers_and_ports():
    rule = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "vllm"}},
                    "podSelector": {"matchLabels": {"app": "ray"}}}], "ports": [{"port": 8000, "protocol": "TCP"}]}
    dns = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
           "ports": [{"port": 53, "protocol": "UDP"}]}
    webui = PEERS[1]
    policy = {"metadata": {"namespace": "openai-webui", "name": "e"},
              "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [rule, dns]}}
    rules = iptables_rules(webui, [policy], PEERS, "10.123.0.1")
    assert ["-A", "OUTPUT", "-d", POD.ip, "-p", "tcp", "--dport", "8000", "-j", "ACCEPT"] in rules
    assert rules[-1] == ["-A", "OUTPUT", "-j", "DROP"]
    assert not [r for r in rules if r[1] == "INPUT"]  # an egress-only policy leaves ingress open
    assert not [r for r in rules if "udp" in r]  # no box pod is in kube-system: the DNS rule admits nothing here


def test_secrets_are_synced_as_eso_would():
    """The fake Secrets Manager shapes the named keys as JSON; remoteRef.property picks one field."""
    import json
    from tests.cluster_box.box import eso_sync, fake_secrets_manager
    es = lambda ns, name, data: {"kind": "ExternalSecret", "metadata": {"namespace": ns, "name": name},  # noqa: E731
                                 "spec": {"target": {"name": name}, "data": data}}
    manifests = [
        es("vllm", "keys", [{"secretKey": "apps", "remoteRef": {"key": "c/vllm-api-keys/apps"}}]),
        es("w", "one", [{"secretKey": "K", "remoteRef": {"key": "c/vllm-api-keys/apps", "property": "current"}}]),
        es("vllm", "ray", [{"secretKey": "auth_token", "remoteRef": {"key": "c/ray-auth-token"}}]),
    ]
    store = fake_secrets_manager(manifests)
    synced = eso_sync(manifests, store)
    assert json.loads(synced[("vllm", "keys")]["apps"]) == {"current": synced[("w", "one")]["K"]}
    assert synced[("vllm", "ray")]["auth_token"] == store["c/ray-auth-token"] and "{" not in store["c/ray-auth-token"]


def test_token_auth_env_is_kuberays():
    from tests.cluster_box import kuberay as kr
    assert kr.auth_secret_name({"authOptions": {"mode": "token", "secretName": "s"}}, "rc") == "s"
    assert kr.auth_secret_name({"authOptions": {"mode": "token"}}, "rc") == "rc"  # KubeRay's own Secret
    assert kr.auth_secret_name({"authOptions": {"secretName": "s"}}, "rc") is None  # no mode: auth is off
    c = {"env": [{"name": "RAY_AUTH_MODE", "value": "token"}]}
    kr.add_token_auth_env(c, "s")
    assert c["env"] == [{"name": "RAY_AUTH_MODE", "value": "token"},
                        {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "auth_token"}}}]


def test_box_image_carries_the_config_modules_of_the_dockerfile():
    from tests.cluster_box.box import image_config_files
    assert image_config_files() == ["config/__init__.py", "config/request_limits.py", "config/secrets.py",
                                    "config/model_store.py", "config/models.py", "config/names.py",
                                    "config/project.py"]
