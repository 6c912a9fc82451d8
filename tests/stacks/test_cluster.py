"""ClusterStack: EKS on aws_eks_v2 with pinned version, logging, KMS, endpoint access, access entries,
a labelled core node group and the managed add-ons (EBS CSI + gp3, CloudWatch with Pod Identity)."""

import json

import pytest

from config.environments import load_config
from config.names import CORE_NODE_ROLE, GP3_STORAGE_CLASS, NODE_ROLE_LABEL
from config.versions import KUBECTL_LAYER_MODULES
from tests.stacks.conftest import ADMIN_ROLES, PUBLIC_CIDR

CFG = load_config({})
ALL_LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}


def _cluster(synth) -> dict:
    (cluster,) = synth.resources("AWS::EKS::Cluster", "Cluster").values()
    return cluster["Properties"]


def test_pinned_kubernetes_version_and_name(synth_dev):
    props = _cluster(synth_dev)
    assert props["Version"] == CFG.kubernetes_version and CFG.kubernetes_version in KUBECTL_LAYER_MODULES
    assert float(props["Version"]) >= 1.33
    assert props["Name"] == CFG.cluster_name


def test_nodegroup_capacity_not_auto_mode(synth_dev):
    props = _cluster(synth_dev)
    assert props["ComputeConfig"]["Enabled"] is False
    assert props["StorageConfig"]["BlockStorage"]["Enabled"] is False


def test_kubectl_layer_matches_cluster_version(synth_dev):
    layers = synth_dev.resources("AWS::Lambda::LayerVersion", "Cluster").values()
    descriptions = " ".join(l["Properties"].get("Description", "") for l in layers)
    assert f"/opt/kubectl/kubectl {CFG.kubernetes_version}." in descriptions, descriptions


@pytest.mark.parametrize("fixture", ["synth_dev", "synth_prod"])
def test_control_plane_logging_all_types(fixture, request):
    props = _cluster(request.getfixturevalue(fixture))
    enabled = {t["Type"] for t in props["Logging"]["ClusterLogging"]["EnabledTypes"]}
    assert enabled == ALL_LOG_TYPES


def test_secrets_encrypted_with_rotating_kms_key(synth_dev):
    props = _cluster(synth_dev)
    (config,) = props["EncryptionConfig"]
    assert config["Resources"] == ["secrets"]
    key_id = config["Provider"]["KeyArn"]["Fn::GetAtt"][0]
    key = synth_dev.template("Cluster")["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True


def test_endpoint_private_only_when_no_public_cidrs(synth_dev):
    vpc_config = _cluster(synth_dev)["ResourcesVpcConfig"]
    assert vpc_config["EndpointPrivateAccess"] is True
    assert vpc_config["EndpointPublicAccess"] is False
    assert "PublicAccessCidrs" not in vpc_config


def test_public_endpoint_limited_to_configured_cidrs(synth_dev_public):
    vpc_config = _cluster(synth_dev_public)["ResourcesVpcConfig"]
    assert vpc_config["EndpointPrivateAccess"] is True
    assert vpc_config["EndpointPublicAccess"] is True
    assert vpc_config["PublicAccessCidrs"] == [PUBLIC_CIDR]


def test_kubectl_provider_runs_inside_the_vpc(synth_dev):
    handlers = [f for f in synth_dev.resources("AWS::Lambda::Function", "Cluster").values()
                if "kubectl" in f["Properties"].get("Description", "")]
    assert handlers and all("VpcConfig" in f["Properties"] for f in handlers)


def test_api_authentication_and_admin_access_entries(synth_dev, synth_dev_public):
    assert _cluster(synth_dev)["AccessConfig"] == {
        "AuthenticationMode": "API", "BootstrapClusterCreatorAdminPermissions": False}
    entries = synth_dev_public.resources("AWS::EKS::AccessEntry", "Cluster").values()
    admins = {e["Properties"]["PrincipalArn"]: e["Properties"] for e in entries
              if isinstance(e["Properties"]["PrincipalArn"], str)}
    assert set(admins) == set(ADMIN_ROLES)
    for props in admins.values():
        (policy,) = props["AccessPolicies"]
        assert policy["AccessScope"] == {"Type": "cluster"}
        assert json.dumps(policy["PolicyArn"]).endswith('cluster-access-policy/AmazonEKSClusterAdminPolicy"]]}')


def test_core_nodegroup_labelled_on_demand_al2023_in_pod_subnets(synth_dev):
    (ng,) = synth_dev.resources("AWS::EKS::Nodegroup", "Cluster").values()
    props = ng["Properties"]
    assert props["Labels"] == {NODE_ROLE_LABEL: CORE_NODE_ROLE}
    assert props["AmiType"] == "AL2023_x86_64_STANDARD" and props["CapacityType"] == "ON_DEMAND"
    assert props["InstanceTypes"] == list(CFG.core_instance_types)
    assert props["ScalingConfig"]["MinSize"] == CFG.core_nodes
    assert all("PodSubnets" in s["Fn::ImportValue"] for s in props["Subnets"])
    assert not any(t.startswith(("inf", "trn")) for t in props["InstanceTypes"])


def test_core_nodes_have_encrypted_gp3_root_and_imdsv2(synth_dev):
    (lt,) = synth_dev.resources("AWS::EC2::LaunchTemplate", "Cluster").values()
    data = lt["Properties"]["LaunchTemplateData"]
    (bdm,) = data["BlockDeviceMappings"]
    assert bdm["Ebs"]["Encrypted"] is True and bdm["Ebs"]["VolumeType"] == "gp3"
    assert data["MetadataOptions"]["HttpTokens"] == "required"


@pytest.mark.parametrize("fixture", ["synth_dev", "synth_prod"])
def test_every_node_has_imds_hop_limit_1(request, fixture):
    """Pods cannot reach the node role through IMDS: every managed node group has our launch template
    and every launch template answers one hop only (the EC2NodeClasses: test_addons.py)."""
    synth = request.getfixturevalue(fixture)
    templates = synth.resources("AWS::EC2::LaunchTemplate")
    assert templates
    for lid, lt in templates.items():
        options = lt["Properties"]["LaunchTemplateData"]["MetadataOptions"]
        assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("required", 1), lid
    for lid, ng in synth.resources("AWS::EKS::Nodegroup").items():
        assert ng["Properties"]["LaunchTemplate"]["Id"]["Ref"] in templates, lid


def test_no_accelerator_nodegroups_on_the_cluster(synth_dev, synth_prod):
    for synth in (synth_dev, synth_prod):
        for ng in synth.resources("AWS::EKS::Nodegroup").values():
            assert not any(t.startswith(("inf", "trn")) for t in ng["Properties"]["InstanceTypes"])


def _addons(synth) -> dict[str, dict]:
    return {a["Properties"]["AddonName"]: a for a in synth.resources("AWS::EKS::Addon", "Cluster").values()}


def test_managed_addons_present_and_after_nodes(synth_dev):
    addons = _addons(synth_dev)
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver",
                           "amazon-cloudwatch-observability", "metrics-server", "eks-node-monitoring-agent"}
    (ng_id,) = synth_dev.resources("AWS::EKS::Nodegroup", "Cluster")
    for addon in addons.values():
        assert ng_id in addon.get("DependsOn", []), addon["Properties"]["AddonName"]


def _role_policy_statements(synth, role_logical_id: str) -> list[dict]:
    statements = []
    for policy in synth.resources("AWS::IAM::Policy", "Cluster").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _pod_identity_role(synth, addon_name: str, service_account: str) -> str:
    (assoc,) = _addons(synth)[addon_name]["Properties"]["PodIdentityAssociations"]
    assert assoc["ServiceAccount"] == service_account
    role_id = assoc["RoleArn"]["Fn::GetAtt"][0]
    role = synth.template("Cluster")["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    return role_id


def test_ebs_csi_driver_via_pod_identity(synth_dev):
    role_id = _pod_identity_role(synth_dev, "aws-ebs-csi-driver", "ebs-csi-controller-sa")
    role = synth_dev.template("Cluster")["Resources"][role_id]["Properties"]
    assert "AmazonEBSCSIDriverPolicy" in json.dumps(role["ManagedPolicyArns"])


def test_gp3_is_the_default_encrypted_storage_class(synth_dev):
    sc = synth_dev.manifest("StorageClass", GP3_STORAGE_CLASS)
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["provisioner"] == "ebs.csi.aws.com"
    assert sc["parameters"]["type"] == "gp3" and sc["parameters"]["encrypted"] == "true"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"


def test_cloudwatch_observability_least_privilege(synth_dev):
    addon = _addons(synth_dev)["amazon-cloudwatch-observability"]["Properties"]
    config = json.loads(addon["ConfigurationValues"])
    kubernetes = config["agent"]["config"]["logs"]["metrics_collected"]["kubernetes"]
    assert kubernetes["enhanced_container_insights"] is True and kubernetes["accelerated_compute_metrics"] is True
    role_id = _pod_identity_role(synth_dev, "amazon-cloudwatch-observability", "cloudwatch-agent")
    role = synth_dev.template("Cluster")["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role, "no broad AWS-managed policy: inline least privilege only"
    statements = _role_policy_statements(synth_dev, role_id)
    for st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert not any(a.endswith("*") for a in actions), actions
        if any(a in ("logs:PutLogEvents", "logs:CreateLogGroup") for a in actions):
            assert f"/aws/containerinsights/{CFG.cluster_name}/" in json.dumps(st["Resource"])
        if "cloudwatch:PutMetricData" in actions:
            assert "cloudwatch:namespace" in st["Condition"]["StringEquals"]
