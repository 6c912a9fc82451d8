"""AddonsStack: Karpenter (IAM, queue, rules, node role, NodePools/EC2NodeClasses valid against the CRDs),
the Neuron chart (device plugin + scheduler extension) and the KubeRay operator, all pinned."""

import json
import re
from pathlib import Path

import pytest

from config.environments import load_config
from config.names import (
    CORE_NODE_ROLE, INFERENCE_NODE_ROLE, KUBERAY_NAMESPACE, NEURON_RESOURCE, NEURON_SCHEDULER_NAME,
    NEURON_TAINT_KEY, NODE_ROLE_LABEL, NODEPOOL_DEFAULT, NODEPOOL_INF2, NODEPOOL_TRN1,
)
from config.versions import (
    AL2023_AMI_ALIAS, AL2023_FAST_IMAGE_PULL_SINCE, KARPENTER_CHART_REPO, KARPENTER_CRD_CHART_REPO, KARPENTER_VERSION, KUBERAY_CHART_REPO,
    KUBERAY_VERSION, NEURON_CHART_REPO, NEURON_CHART_VERSION, EXTERNAL_SECRETS_CHART_REPO, EXTERNAL_SECRETS_VERSION,
)
from platform_constructs.tags import KARPENTER_DISCOVERY_TAG
from tests.support.crd_validator import assert_valid

CFG = load_config({})
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def _kinds(synth, kind):
    return {m["metadata"]["name"]: m for m in synth.manifests("Addons") if m["kind"] == kind}


# --- pinned charts --------------------------------------------------------------------------------

def test_every_helm_chart_is_pinned(synth_dev):
    charts = synth_dev.helm_charts()
    assert set(charts) == {"karpenter-crd", "karpenter", "neuron", "kuberay-operator", "external-secrets",
                           "aws-load-balancer-controller"}
    for release, props in charts.items():
        assert SEMVER.match(props["Version"]), (release, props["Version"])


def test_chart_versions_and_repos(synth_dev):
    charts = synth_dev.helm_charts()
    assert (charts["karpenter"]["Repository"], charts["karpenter"]["Version"]) == (KARPENTER_CHART_REPO, KARPENTER_VERSION)
    assert (charts["karpenter-crd"]["Repository"], charts["karpenter-crd"]["Version"]) == (KARPENTER_CRD_CHART_REPO, KARPENTER_VERSION)
    assert KARPENTER_VERSION.startswith("1.14.")
    assert charts["karpenter"]["SkipCrds"] is True
    assert (charts["neuron"]["Repository"], charts["neuron"]["Version"]) == (NEURON_CHART_REPO, NEURON_CHART_VERSION)
    assert (charts["kuberay-operator"]["Repository"], charts["kuberay-operator"]["Version"]) == (KUBERAY_CHART_REPO, KUBERAY_VERSION)
    assert KUBERAY_VERSION.startswith("1.7.")
    assert charts["kuberay-operator"]["Namespace"] == KUBERAY_NAMESPACE
    assert (charts["external-secrets"]["Repository"], charts["external-secrets"]["Version"]) == (
        EXTERNAL_SECRETS_CHART_REPO, EXTERNAL_SECRETS_VERSION)


def test_ami_alias_is_pinned_not_latest():
    assert re.fullmatch(r"al2023@v\d{8}", AL2023_AMI_ALIAS), AL2023_AMI_ALIAS


# --- Karpenter controller -----------------------------------------------------------------------

def test_karpenter_values(synth_dev):
    values = synth_dev.helm_charts()["karpenter"]["Values"]
    assert values["settings"]["clusterName"] == CFG.cluster_name
    (queue_id,) = synth_dev.resources("AWS::SQS::Queue", "Addons")
    assert values["settings"]["interruptionQueue"] == "${%s.QueueName}" % queue_id
    assert values["nodeSelector"] == {NODE_ROLE_LABEL: CORE_NODE_ROLE}
    assert values["replicas"] >= 2
    # With IMDS out of a pod's reach Karpenter cannot ask it for the region: it is given.
    assert {"name": "AWS_REGION", "value": CFG.region} in values["controller"]["env"]


def test_karpenter_controller_uses_pod_identity(synth_dev):
    (assoc,) = [a for a in synth_dev.resources("AWS::EKS::PodIdentityAssociation", "Addons").values()
                if a["Properties"]["ServiceAccount"] == "karpenter"]
    props = assoc["Properties"]
    assert (props["Namespace"], props["ServiceAccount"]) == ("kube-system", "karpenter")
    role = synth_dev.template("Addons")["Resources"][props["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}


def _controller_statements(synth):
    policies = [p for lid, p in synth.resources("AWS::IAM::Policy", "Addons").items() if "ControllerPolicy" in lid]
    (policy,) = policies
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_karpenter_writes_are_scoped_to_this_cluster(synth_dev):
    statements = _controller_statements(synth_dev)
    owned_key = f"aws:RequestTag/kubernetes.io/cluster/{CFG.cluster_name}"
    for sid in ("AllowScopedEC2InstanceActionsWithTags", "AllowScopedResourceCreationTagging"):
        assert statements[sid]["Condition"]["StringEquals"][owned_key] == "owned"
    assert statements["AllowScopedDeletion"]["Condition"]["StringEquals"] == {
        f"aws:ResourceTag/kubernetes.io/cluster/{CFG.cluster_name}": "owned"}
    passrole = statements["AllowPassingInstanceRole"]
    assert passrole["Resource"] != "*" and passrole["Condition"]["StringEquals"]["iam:PassedToService"] == "ec2.amazonaws.com"
    assert statements["AllowRegionalReadActions"]["Condition"] == {"StringEquals": {"aws:RequestedRegion": CFG.region}}
    unscoped = [sid for sid, s in statements.items() if s["Resource"] == "*" and "Condition" not in s]
    assert sorted(unscoped) == ["AllowPricingReadActions", "AllowUnscopedInstanceProfileListAction"]


def test_interruption_queue_and_rules(synth_dev):
    (queue,) = synth_dev.resources("AWS::SQS::Queue", "Addons").values()
    assert queue["Properties"]["QueueName"] == CFG.cluster_name
    assert queue["Properties"]["MessageRetentionPeriod"] == 300
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    patterns = {(r["Properties"]["EventPattern"]["source"][0], r["Properties"]["EventPattern"]["detail-type"][0])
                for r in synth_dev.resources("AWS::Events::Rule", "Addons").values()}
    # Exactly the rules of Karpenter's v1.14.1 reference CloudFormation (recorded in tests/support/data).
    reference = json.loads((Path(__file__).parents[1] / "support" / "data" / "karpenter_v1.14.1_reference_policy.json").read_text())
    assert patterns == {(r["source"], r["detail-type"]) for r in reference["interruption_rules"]}
    (queue_policy,) = synth_dev.resources("AWS::SQS::QueuePolicy", "Addons").values()
    text = json.dumps(queue_policy["Properties"]["PolicyDocument"])
    assert "events.amazonaws.com" in text and "aws:SecureTransport" in text


def test_karpenter_node_role_and_access_entry(synth_dev):
    resources = synth_dev.template("Addons")["Resources"]
    (role_id,) = [lid for lid, r in resources.items() if r["Type"] == "AWS::IAM::Role" and "NodeRole" in lid]
    role = resources[role_id]["Properties"]
    assert role["RoleName"] == f"KarpenterNode-{CFG.cluster_name}"
    policies = json.dumps(role["ManagedPolicyArns"])
    for name in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly",
                 "AmazonSSMManagedInstanceCore"):
        assert name in policies
    (entry,) = synth_dev.resources("AWS::EKS::AccessEntry", "Addons").values()
    assert entry["Properties"]["Type"] == "EC2_LINUX"
    assert entry["Properties"]["PrincipalArn"] == {"Fn::GetAtt": [role_id, "Arn"]}


# --- NodePools and EC2NodeClasses ---------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["synth_dev", "synth_prod"])
def test_every_nodepool_and_nodeclass_is_valid_against_the_crds(fixture, request):
    synth = request.getfixturevalue(fixture)
    objects = [m for m in synth.manifests("Addons") if m["kind"] in ("NodePool", "EC2NodeClass")]
    assert len(objects) == 5
    for obj in objects:
        assert_valid(obj)


def test_node_classes(synth_dev):
    classes = _kinds(synth_dev, "EC2NodeClass")
    assert set(classes) == {"default", "neuron"}
    for nc in classes.values():
        spec = nc["spec"]
        assert spec["amiSelectorTerms"] == [{"alias": AL2023_AMI_ALIAS}]
        assert spec["role"] == f"KarpenterNode-{CFG.cluster_name}"
        assert spec["subnetSelectorTerms"] == [{"tags": {KARPENTER_DISCOVERY_TAG: CFG.cluster_name}}]
        (root,) = spec["blockDeviceMappings"]
        assert root["rootVolume"] is True and root["ebs"]["encrypted"] is True and root["ebs"]["volumeType"] == "gp3"
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1, "pods must not reach the node role"
    neuron_root = int(classes["neuron"]["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"].removesuffix("Gi"))
    assert neuron_root >= 200, "root volume must hold the Neuron image, weights and compile cache"


@pytest.mark.parametrize("fixture", ["synth_dev", "synth_prod"])
def test_neuron_nodes_pull_images_with_soci_parallel_pull(fixture, request):
    """Issue 12 (image pull): the Neuron EC2NodeClass turns on nodeadm's FastImagePull (SOCI parallel pull
    and unpack), the default class does not, and the pinned AMI is recent enough to have the gate."""
    import yaml

    classes = _kinds(request.getfixturevalue(fixture), "EC2NodeClass")
    node_config = yaml.safe_load(classes["neuron"]["spec"]["userData"])
    assert node_config["apiVersion"] == "node.eks.aws/v1alpha1" and node_config["kind"] == "NodeConfig"
    assert node_config["spec"] == {"featureGates": {"FastImagePull": True}}
    assert "userData" not in classes["default"]["spec"]
    release = AL2023_AMI_ALIAS.split("@", 1)[1]
    assert re.fullmatch(r"v\d{8}", release) and release >= AL2023_FAST_IMAGE_PULL_SINCE


@pytest.mark.parametrize("fixture", ["synth_dev", "synth_prod"])
def test_neuron_root_volume_is_the_one_the_budget_computes_with(fixture, request):
    """The gp3 IOPS and throughput the EC2NodeClass provisions are config/node_io.py's NEURON_ROOT_GP3, the
    figures config/cold_start.py derives the weights fetch from; the default class keeps gp3's baseline."""
    from config.node_io import NEURON_ROOT_GP3

    classes = _kinds(request.getfixturevalue(fixture), "EC2NodeClass")
    (root,) = classes["neuron"]["spec"]["blockDeviceMappings"]
    assert (root["ebs"]["iops"], root["ebs"]["throughput"]) == (NEURON_ROOT_GP3.iops, NEURON_ROOT_GP3.throughput_mibps)
    (default_root,) = classes["default"]["spec"]["blockDeviceMappings"]
    assert "iops" not in default_root["ebs"] and "throughput" not in default_root["ebs"]


def test_default_pool_x86_spot_and_on_demand(synth_dev):
    pool = _kinds(synth_dev, "NodePool")[NODEPOOL_DEFAULT]["spec"]
    req = {r["key"]: r for r in pool["template"]["spec"]["requirements"]}
    assert req["kubernetes.io/arch"]["values"] == ["amd64"]
    assert set(req["karpenter.sh/capacity-type"]["values"]) == {"spot", "on-demand"}
    assert set(req["karpenter.k8s.aws/instance-category"]["values"]) == {"c", "m", "r"}
    assert "taints" not in pool["template"]["spec"]
    assert pool["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert pool["limits"]["cpu"]


@pytest.mark.parametrize("name,family", [(NODEPOOL_INF2, "inf2"), (NODEPOOL_TRN1, "trn1")])
def test_accelerator_pools(synth_dev, name, family):
    pool = _kinds(synth_dev, "NodePool")[name]["spec"]
    template = pool["template"]
    req = {r["key"]: r for r in template["spec"]["requirements"]}
    assert req["karpenter.k8s.aws/instance-family"]["values"] == [family]
    assert req["karpenter.sh/capacity-type"]["values"] == ["on-demand"]
    assert template["spec"]["taints"] == [{"key": NEURON_TAINT_KEY, "value": "true", "effect": "NoSchedule"}]
    assert template["metadata"]["labels"][NODE_ROLE_LABEL] == INFERENCE_NODE_ROLE
    assert template["spec"]["nodeClassRef"]["name"] == "neuron"
    assert template["spec"]["expireAfter"]
    assert pool["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert int(pool["limits"][NEURON_RESOURCE]) > 0


def test_inf2_limits_follow_preset_and_replicas(synth_dev, synth_prod):
    for synth, cfg in ((synth_dev, CFG), (synth_prod, load_config({"env": "prod"}))):
        limits = _kinds(synth, "NodePool")[NODEPOOL_INF2]["spec"]["limits"]
        # Every worker pod the Ray autoscaler may ask for, one per node, plus one replacement node.
        assert int(limits[NEURON_RESOURCE]) == cfg.preset.neuron_devices * (cfg.worker_shape.max_pods + 1)


# --- Neuron and KubeRay -------------------------------------------------------------------------

def test_neuron_chart_device_plugin_and_scheduler(synth_dev):
    values = synth_dev.helm_charts()["neuron"]["Values"]
    assert values["devicePlugin"]["enabled"] is True
    assert values["scheduler"]["enabled"] is True
    assert values["scheduler"]["customScheduler"]["fullnameOverride"] == NEURON_SCHEDULER_NAME
    assert values["scheduler"]["nodeSelector"] == {NODE_ROLE_LABEL: CORE_NODE_ROLE}


def test_kuberay_operator_on_core_nodes(synth_dev):
    values = synth_dev.helm_charts()["kuberay-operator"]["Values"]
    assert values["nodeSelector"] == {NODE_ROLE_LABEL: CORE_NODE_ROLE}


def test_nodepools_applied_after_karpenter_chart(synth_dev):
    resources = synth_dev.template("Addons")["Resources"]
    (pools_id,) = [lid for lid in resources if lid.startswith("KarpenterNodePools")]
    (chart_id,) = [lid for lid in resources if lid.startswith("KarpenterChart")]
    (crds_id,) = [lid for lid in resources if lid.startswith("KarpenterCrds")]
    assert chart_id in resources[pools_id]["DependsOn"]
    assert crds_id in resources[chart_id]["DependsOn"]
