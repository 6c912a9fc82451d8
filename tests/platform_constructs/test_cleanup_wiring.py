"""The destroy-time cleanup as synthesized: CloudFormation's delete order runs it after the NodePools
are gone and before Karpenter, the cluster and the VPC; its timeout fits the Lambda; least privilege."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Duration

from config.environments import ENVIRONMENTS

CLEANUP_TYPE = "Custom::ClusterCleanup"


@pytest.fixture(scope="module")
def addons(synth_dev):
    return synth_dev.template("Addons")


def _one(template, type_):
    found = {k: v for k, v in template["Resources"].items() if v["Type"] == type_}
    assert len(found) == 1, f"{type_}: {list(found)}"
    return next(iter(found.items()))


def test_cleanup_runs_before_karpenter_and_after_the_nodepools(addons):
    cleanup_id, cleanup = _one(addons, CLEANUP_TYPE)
    res = addons["Resources"]
    charts = {k for k, v in res.items() if v["Type"] == "Custom::AWSCDK-EKS-HelmChart"
              and v["Properties"].get("Release") == "karpenter"}
    assert len(charts) == 1
    # Resource A depends on B => CloudFormation deletes A first. Cleanup depends on the Karpenter release:
    # it runs while Karpenter still exists.
    assert charts <= set(cleanup["DependsOn"])
    pools = [k for k, v in res.items() if v["Type"] == "Custom::AWSCDK-EKS-KubernetesResource"
             and "NodePool" in json.dumps(v["Properties"].get("Manifest", ""))]
    assert pools, "the NodePools manifest"
    for pool in pools:
        assert cleanup_id in res[pool]["DependsOn"], "NodePools are deleted (Karpenter drains) before the cleanup"


def test_cleanup_stack_is_deleted_before_the_cluster_and_the_vpc(synth_dev):
    manifest = json.loads((Path(synth_dev.outdir) / "manifest.json").read_text())
    cfg = ENVIRONMENTS["dev"]
    deps = set(manifest["artifacts"][f"{cfg.stack_prefix}-Addons"].get("dependencies", []))
    assert {f"{cfg.stack_prefix}-Cluster", f"{cfg.stack_prefix}-Network"} <= deps


def _handler(addons):
    handlers = [v for k, v in addons["Resources"].items()
                if v["Type"] == "AWS::Lambda::Function" and v["Properties"].get("Handler") == "index.handler"
                and "ClusterCleanup" in k]
    assert len(handlers) == 1
    return handlers[0]["Properties"]


def test_cluster_and_vpc_are_the_functions_configuration_not_the_events(addons):
    _, cleanup = _one(addons, CLEANUP_TYPE)
    assert not {"ClusterName", "VpcId", "TimeoutSeconds"} & set(cleanup["Properties"]), "nothing to override"
    handler = _handler(addons)
    env = handler["Environment"]["Variables"]
    assert env["CLUSTER_NAME"] == ENVIRONMENTS["dev"].cluster_name
    assert "Fn::ImportValue" in json.dumps(env["VPC_ID"]), "the VPC of the network stack"
    assert int(env["TIMEOUT_SECONDS"]) + 30 <= handler["Timeout"] <= 900


def _statements(addons):
    return [st for k, v in addons["Resources"].items() if v["Type"] == "AWS::IAM::Policy" and "ClusterCleanup" in k
            for st in v["Properties"]["PolicyDocument"]["Statement"]]


def _actions(st):
    return [st["Action"]] if isinstance(st["Action"], str) else st["Action"]


def test_cleanup_may_terminate_only_this_clusters_karpenter_instances(addons):
    terminate = [st for st in _statements(addons) if "ec2:TerminateInstances" in _actions(st)]
    assert len(terminate) == 1
    cluster = ENVIRONMENTS["dev"].cluster_name
    assert terminate[0]["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"},
        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
        "Null": {"aws:ResourceTag/aws:cloudformation:stack-id": "true"},
    }


def test_every_delete_is_conditioned_on_this_clusters_tags_and_vpc(addons):
    """No delete, revoke or terminate on an unconditioned resource: owner tag of this cluster, never a
    CloudFormation (or, for groups, EKS) resource, and ENIs/groups only in this VPC (ec2:Vpc)."""
    cluster = ENVIRONMENTS["dev"].cluster_name
    writes = [st for st in _statements(addons) if st.get("Sid", "").startswith(("Delete", "Revoke"))]
    assert {a for st in writes for a in _actions(st)} == {
        "ec2:TerminateInstances", "ec2:DeleteLaunchTemplate", "ec2:DeleteNetworkInterface", "ec2:DeleteVolume",
        "ec2:DeleteSecurityGroup", "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress",
        "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:DeleteTargetGroup"}
    for st in writes:
        assert st["Resource"] != "*", st
        cond, actions = st["Condition"], _actions(st)
        vpc = cond.get("ArnEquals", {}).get("ec2:Vpc")
        if any(a in ("ec2:DeleteNetworkInterface", "ec2:DeleteSecurityGroup") or a.startswith("ec2:Revoke")
               for a in actions):
            assert vpc and ":vpc/" in json.dumps(vpc) and "Fn::ImportValue" in json.dumps(vpc), st
        if st["Sid"] == "RevokeRulesInThisVpc":
            continue
        ((key, value),) = cond["StringEquals"].items()
        assert key.startswith("aws:ResourceTag/") and cluster in key + value, st
        assert cond["Null"]["aws:ResourceTag/aws:cloudformation:stack-id"] == "true", st
        if "ec2:DeleteSecurityGroup" in actions:
            assert cond["Null"]["aws:ResourceTag/aws:eks:cluster-name"] == "true", "never EKS's cluster group"
    elb = [st for st in writes if any(a.startswith("elasticloadbalancing:") for a in _actions(st))]
    assert {next(iter(st["Condition"]["StringEquals"])) for st in elb} == {
        f"aws:ResourceTag/kubernetes.io/cluster/{cluster}", "aws:ResourceTag/elbv2.k8s.aws/cluster"}
    reads = [st for st in _statements(addons) if st.get("Sid") == "Describe"]
    assert all(a.split(":")[1].startswith("Describe") for st in reads for a in _actions(st))


def test_a_token_cluster_name_is_refused():
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2

    from platform_constructs.cleanup import ClusterCleanup

    stack = cdk.Stack(cdk.App())
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    with pytest.raises(ValueError, match="cluster_name: pass the configured name"):
        ClusterCleanup(stack, "Cleanup", cluster_name=cdk.Fn.ref("Name"), vpc=vpc)


def test_timeout_beyond_lambda_limit_is_rejected():
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2

    from platform_constructs.cleanup import ClusterCleanup

    stack = cdk.Stack(cdk.App())
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    with pytest.raises(ValueError, match="at most 870 seconds"):
        ClusterCleanup(stack, "Cleanup", cluster_name="c", vpc=vpc, timeout=Duration.minutes(15))
