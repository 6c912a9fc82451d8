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


def test_cleanup_properties_and_timeout(addons):
    _, cleanup = _one(addons, CLEANUP_TYPE)
    props = cleanup["Properties"]
    assert props["ClusterName"] == ENVIRONMENTS["dev"].cluster_name
    assert "Fn::ImportValue" in json.dumps(props["VpcId"]), "the VPC of the network stack"
    handlers = [v for k, v in addons["Resources"].items()
                if v["Type"] == "AWS::Lambda::Function" and v["Properties"].get("Handler") == "index.handler"
                and "ClusterCleanup" in k]
    assert len(handlers) == 1
    lambda_timeout = handlers[0]["Properties"]["Timeout"]
    assert int(props["TimeoutSeconds"]) + 30 <= lambda_timeout <= 900


def test_cleanup_may_terminate_only_this_clusters_instances(addons):
    statements = [st for k, v in addons["Resources"].items() if v["Type"] == "AWS::IAM::Policy" and "ClusterCleanup" in k
                  for st in v["Properties"]["PolicyDocument"]["Statement"]]
    terminate = [st for st in statements if "ec2:TerminateInstances" in json.dumps(st["Action"])]
    assert len(terminate) == 1
    cluster = ENVIRONMENTS["dev"].cluster_name
    assert terminate[0]["Condition"] == {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"}}
    writes = [st for st in statements if any(not a.split(":")[1].startswith("Describe") for a in
                                             ([st["Action"]] if isinstance(st["Action"], str) else st["Action"]))]
    assert all(st["Resource"] != "*" for st in writes), "no write on Resource *"


def test_timeout_beyond_lambda_limit_is_rejected():
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2

    from platform_constructs.cleanup import ClusterCleanup

    stack = cdk.Stack(cdk.App())
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    with pytest.raises(ValueError, match="at most 870 seconds"):
        ClusterCleanup(stack, "Cleanup", cluster_name="c", vpc=vpc, timeout=Duration.minutes(15))
