"""config/node_fit.py models Karpenter 1.14.1's estimate of a new inf2/trn1 node; these tests tie the
model to Karpenter's own published figures and to what this app actually installs and configures."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import all_environments
from config.names import NEURON_RESOURCE, NEURON_TAINT_KEY, NODEPOOL_INF2, NODEPOOL_TRN1
from config.node_fit import (
    DAEMONSETS, INSTANCE_TYPES, KARPENTER_MODEL_VERSION, Requests, estimate, kube_reserved_cpu_m, pod_requests,
)
from config.presets import PRESETS
from config.versions import KARPENTER_VERSION
from config.worker_shape import DISRUPTION_SURGE_NODES
from platform_constructs import karpenter_pools

# The "Resources" tables Karpenter generates for every instance type (allocatable cpu / memory, pods):
# aws/karpenter-provider-aws v1.14.1, website/content/en/docs/reference/instance-types.md. Recorded here
# because the fetched repository is not part of this one.
PUBLISHED = {  # instance: (cpu millicores, memory MiB, pods)
    "inf2.xlarge": (3920, 14162, 58),
    "inf2.8xlarge": (31850, 118312, 234),
    "inf2.24xlarge": (95690, 355262, 737),
    "inf2.48xlarge": (191450, 718987, 737),
    "trn1.2xlarge": (7910, 29317, 58),
    "trn1.32xlarge": (127610, 481894, 247),
}


def test_the_model_follows_the_deployed_karpenter():
    assert KARPENTER_MODEL_VERSION == KARPENTER_VERSION


@pytest.mark.parametrize("instance", sorted(PUBLISHED))
def test_model_reproduces_karpenters_published_allocatable(instance):
    node = estimate(instance)
    assert (node.allocatable.cpu_m, node.allocatable.memory_mib, node.pods) == PUBLISHED[instance]


def test_every_preset_has_its_instance_facts():
    assert set(PRESETS) <= set(INSTANCE_TYPES)
    for name, p in PRESETS.items():
        assert (p.vcpus, p.memory_gib * 1024) == (INSTANCE_TYPES[name].vcpus, INSTANCE_TYPES[name].memory_mib)


def test_kube_reserved_cpu_ranges():
    # 60m for the first core, 10m the second, 5m each for cores 3-4, 2.5m per core beyond.
    assert [kube_reserved_cpu_m(n) for n in (1, 2, 4, 8, 192)] == [60, 70, 80, 90, 550]


def test_pod_requests_count_init_containers_as_kubernetes_does():
    containers = [Requests(1000, 512), Requests(500, 256)]
    assert pod_requests(containers, [Requests(200, 1024)]) == Requests(1500, 1024)
    assert pod_requests(containers, [Requests(2000, 10), Requests(100, 100)]) == Requests(2000, 768)


# --- the DaemonSet table is this app's ------------------------------------------------------------

# Add-ons / charts that run no DaemonSet (Deployments only), so they need no row in DAEMONSETS.
NO_DAEMONSETS = {"coredns", "karpenter", "karpenter-crd", "kuberay-operator", "external-secrets",
                 "aws-load-balancer-controller", "metrics-server"}


def test_every_addon_and_chart_of_the_app_is_accounted_for(synth_dev):
    addons = {r["Properties"]["AddonName"] for r in synth_dev.resources("AWS::EKS::Addon").values()}
    charts = set(synth_dev.helm_charts())
    assert {"vpc-cni", "kube-proxy", "aws-ebs-csi-driver", "amazon-cloudwatch-observability"} <= addons
    installers = " ".join(d.installed_by for d in DAEMONSETS).lower()
    missing = sorted(n for n in addons | charts if n not in NO_DAEMONSETS and n.lower() not in installers)
    assert not missing, f"installs DaemonSets not in config/node_fit.py DAEMONSETS: {missing}"


def test_neuron_chart_daemonsets_are_the_enabled_ones(synth_dev):
    values = synth_dev.helm_charts()["neuron"]["Values"]
    counted = {d.name for d in estimate("inf2.8xlarge").daemonsets}
    assert values["devicePlugin"]["enabled"] is True and "neuron-device-plugin" in counted
    assert values["npd"]["enabled"] is True and "node-problem-detector" in counted
    # The chart's tolerations are not overridden (the table relies on its defaults).
    assert "tolerations" not in values["devicePlugin"] and "tolerations" not in values["npd"]


def test_only_daemonsets_that_land_on_neuron_nodes_count():
    counted = {d.name for d in estimate("inf2.48xlarge").daemonsets}
    assert counted == {d.name for d in DAEMONSETS if d.lands_on_neuron_nodes}
    assert "dcgm-exporter" not in counted
    assert all(d.source for d in DAEMONSETS)
    assert len({d.name for d in DAEMONSETS}) == len(DAEMONSETS)


# --- what the model assumes about our Karpenter configuration --------------------------------------

def test_karpenter_settings_keep_the_modelled_defaults(synth_dev):
    """vmMemoryOverheadPercent 0.075 and reservedENIs 0 are Karpenter's defaults; the app sets neither."""
    settings = synth_dev.helm_charts()["karpenter"]["Values"]["settings"]
    assert set(settings) == {"clusterName", "interruptionQueue"}


def test_neuron_nodeclass_sets_no_kubelet_overrides(synth_dev):
    """No kubelet block: Karpenter uses ENI-limited max pods and its default kube-reserved / eviction."""
    classes = {m["metadata"]["name"]: m for m in synth_dev.manifests("Addons") if m["kind"] == "EC2NodeClass"}
    spec = classes[karpenter_pools.NODECLASS_NEURON]["spec"]
    assert "kubelet" not in spec
    assert spec["amiSelectorTerms"][0]["alias"].startswith("al2023@")  # AL2023 family


def test_neuron_nodepools_carry_the_taint_the_table_tolerates(synth_dev):
    pools = {m["metadata"]["name"]: m for m in synth_dev.manifests("Addons") if m["kind"] == "NodePool"}
    for name in (NODEPOOL_INF2, NODEPOOL_TRN1):
        assert pools[name]["spec"]["template"]["spec"]["taints"] == [
            {"key": NEURON_TAINT_KEY, "value": "true", "effect": "NoSchedule"}]


# --- NodePool limits still allow the configured worker nodes -----------------------------------------

def _gib(quantity: str) -> int:
    return int(quantity.removesuffix("Gi"))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_nodepool_limits_allow_every_worker_pod_and_a_replacement(preset):
    """Karpenter holds limits against node capacity (core scheduler.go filterByRemainingResources).
    Serve's max_replicas, the worker group's maxReplicas and the NodePool limits derive from one
    number: pods = ceil(max_replicas / replicas_per_node), nodes = pods + the disruption surge."""
    for cfg in all_environments():
        cfg = dataclasses.replace(cfg, accelerator_preset=preset)
        shape, node = cfg.worker_shape, estimate(preset)
        limits = next(m for m in karpenter_pools.node_pools(shape) if m["metadata"]["name"] == shape.pool)["spec"]["limits"]
        pods = -(-cfg.max_replicas // shape.replicas_per_node)
        assert shape.max_pods == pods and (pods - 1) * shape.replicas_per_node < cfg.max_replicas
        n = pods + DISRUPTION_SURGE_NODES
        assert shape.max_nodes == n  # every worker pod on its own node, and one replacement
        assert int(limits["cpu"]) >= n * node.capacity_cpu_m // 1000, (cfg.name, preset)
        assert _gib(limits["memory"]) * 1024 >= n * INSTANCE_TYPES[preset].memory_mib >= n * node.capacity_memory_mib
        assert int(limits[NEURON_RESOURCE]) >= n * shape.neuron_devices
