"""Every log group the app creates expires, and no Lambda falls back to a never-expiring default group."""

from __future__ import annotations

import pytest

from config.environments import load_config


def _templates(synth):
    return synth.templates.items()


@pytest.mark.parametrize("synth_name", ["synth_dev", "synth_prod"])
def test_every_log_group_has_retention(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    groups = 0
    for stack, template in _templates(synth):
        for logical_id, resource in template.get("Resources", {}).items():
            if resource["Type"] == "AWS::Logs::LogGroup":
                groups += 1
                assert resource["Properties"].get("RetentionInDays"), f"{stack}/{logical_id} never expires"
    assert groups >= 8  # flow logs, EKS control plane, 4 Container Insights groups, Lambdas, smoke test


@pytest.mark.parametrize("synth_name", ["synth_dev", "synth_prod"])
def test_every_lambda_logs_to_a_group_with_retention(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    functions = 0
    for stack, template in _templates(synth):
        resources = template.get("Resources", {})
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            functions += 1
            group = resource["Properties"].get("LoggingConfig", {}).get("LogGroup")
            assert group, f"{stack}/{logical_id} would log to a /aws/lambda group that never expires"
            if isinstance(group, dict) and "Ref" in group:
                assert resources[group["Ref"]]["Properties"].get("RetentionInDays")
    assert functions >= 3  # kubectl provider handlers, default-SG restrictor, cleanup, smoke test


def test_service_log_groups_are_created_with_the_environment_retention(synth_dev):
    cfg = load_config({"env": "dev"})
    template = synth_dev.template("Cluster")
    names = {
        str(r["Properties"].get("LogGroupName")): r["Properties"].get("RetentionInDays")
        for r in template["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"
    }
    expected = [f"/aws/eks/{cfg.cluster_name}/cluster"] + [
        f"/aws/containerinsights/{cfg.cluster_name}/{kind}" for kind in ("application", "dataplane", "host", "performance")
    ]
    for name in expected:
        assert names.get(name) == cfg.log_retention_days, f"{name} missing or wrong retention: {names}"
