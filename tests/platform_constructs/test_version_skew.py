"""Item 10: the Neuron scheduler extension's second kube-scheduler runs the cluster's minor version, and
the Karpenter controller policy grants everything the v1.14.1 reference policy grants."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from config.environments import load_config
from config.versions import KARPENTER_VERSION, KUBECTL_LAYER_MODULES, NEURON_KUBE_SCHEDULER_TAGS
from platform_constructs.addons.neuron import neuron_values

CFG = load_config({})
REFERENCE = json.loads((Path(__file__).parents[1] / "support" / "data" / "karpenter_v1.14.1_reference_policy.json").read_text())
# EKS Distro tags: v<major>.<minor>.<patch>-eks-<major>-<minor>-<release>
EKS_DISTRO_TAG = re.compile(r"^v(\d+)\.(\d+)\.\d+-eks-(\d+)-(\d+)-\d+$")


def _minor(tag: str) -> str:
    m = EKS_DISTRO_TAG.match(tag)
    assert m and m.group(1, 2) == m.group(3, 4), tag
    return f"{m.group(1)}.{m.group(2)}"


# --- Neuron scheduler extension: kube-scheduler image ----------------------------------------------

def test_the_deployed_kube_scheduler_matches_the_cluster_minor(synth_dev):
    image = synth_dev.helm_charts()["neuron"]["Values"]["scheduler"]["customScheduler"]["image"]
    assert image["repository"] == "public.ecr.aws/eks-distro/kubernetes/kube-scheduler"
    assert _minor(image["tag"]) == CFG.kubernetes_version


@pytest.mark.parametrize("version", sorted(KUBECTL_LAYER_MODULES))
def test_every_supported_kubernetes_version_pins_its_own_scheduler(version):
    tag = neuron_values({}, version)["scheduler"]["customScheduler"]["image"]["tag"]
    assert _minor(tag) == version


def test_scheduler_tags_cover_exactly_the_supported_versions():
    assert set(NEURON_KUBE_SCHEDULER_TAGS) == set(KUBECTL_LAYER_MODULES)


def test_an_unpinned_version_fails_naming_the_field():
    with pytest.raises(ValueError, match=r"^kubernetes_version: no Neuron kube-scheduler image pinned for '1.99'"):
        neuron_values({}, "1.99")


# --- Karpenter controller policy vs the v1.14.1 reference ------------------------------------------

def _controller_statements(synth):
    (policy,) = [p for lid, p in synth.resources("AWS::IAM::Policy", "Addons").items() if "ControllerPolicy" in lid]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_reference_is_the_deployed_karpenter_version():
    assert REFERENCE["version"] == f"v{KARPENTER_VERSION}"


def test_every_reference_action_is_granted(synth_dev):
    granted = {a for s in _controller_statements(synth_dev).values() for a in _as_list(s["Action"])}
    reference = {a for s in REFERENCE["statements"] for a in s["actions"]}
    assert not sorted(reference - granted), f"missing from the controller policy: {sorted(reference - granted)}"


def test_every_reference_statement_exists_with_its_actions_and_resource_kinds(synth_dev):
    """Same Sid, same actions, and every resource type of the reference (ARN tail like placement-group/*)."""
    ours = _controller_statements(synth_dev)
    for ref in REFERENCE["statements"]:
        ours_stmt = ours.get(ref["sid"])
        assert ours_stmt, f"statement {ref['sid']} missing"
        assert sorted(_as_list(ours_stmt["Action"])) == sorted(ref["actions"]), ref["sid"]
        text = json.dumps(ours_stmt["Resource"])
        for resource in ref["resources"]:
            if re.fullmatch(r"\$\{\w+\.Arn\}", resource):  # the reference's own role / queue: ours is scoped too
                assert ours_stmt["Resource"] != "*", ref["sid"]
                continue
            tail = "*" if resource == "*" else resource.rsplit(":", 1)[-1].replace("${ClusterName}", CFG.cluster_name)
            assert tail in text, (ref["sid"], tail)
