"""Issue 13 on the real synthesized stacks (aws_cdk.assertions): the AWS Load Balancer Controller's role,
policy and Pod Identity; the ALB's certificate, TLS policy and source CIDRs (the controller derives its
security-group rules from inboundCIDRs); WAF only and always when internet-facing; metrics-server, the
node monitoring agent and node auto-repair; destroy-time cleanup ordered before the controller goes."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from config.ingress import ALB_TLS_POLICY, DEFAULT_WAF_REQUESTS_PER_5MIN
from config.names import AWS_LOAD_BALANCER_CONTROLLER_NAMESPACE
from config.versions import (
    AWS_LOAD_BALANCER_CONTROLLER_CHART_REPO, AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION,
    AWS_LOAD_BALANCER_CONTROLLER_VERSION,
)
from platform_constructs.addons.aws_load_balancer_controller import published_policy
from tests.support.alb_schemas import policy_atoms
from tests.support.synth import synthesize


@pytest.fixture(scope="session")
def synth_dev_internet(tmp_path_factory):
    return synthesize({"alb_internet_facing": "true", "alb_allowed_cidrs": "203.0.113.0/24"},
                      tmp_path_factory.mktemp("cdk-out-dev-internet"))


def _params(synth):
    (params,) = [m for m in synth.manifests("Inference") if m["kind"] == "IngressClassParams"]
    return params["spec"]


def test_controller_chart_is_pinned(synth_dev):
    chart = synth_dev.helm_charts("Addons")["aws-load-balancer-controller"]
    assert (chart["Repository"], chart["Version"]) == (AWS_LOAD_BALANCER_CONTROLLER_CHART_REPO,
                                                       AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION)
    assert chart["Namespace"] == AWS_LOAD_BALANCER_CONTROLLER_NAMESPACE
    values = chart["Values"]
    assert values["image"]["tag"] == AWS_LOAD_BALANCER_CONTROLLER_VERSION
    assert values["createIngressClassResource"] is False  # the inference charts own the class


def test_controller_role_has_the_published_policy_by_pod_identity(synth_dev):
    t = Template.from_json(synth_dev.template("Addons"))
    policies = t.find_resources("AWS::IAM::Policy", {"Properties": {"PolicyName": Match.string_like_regexp("AwsLoadBalancerController")}})
    (policy,) = policies.values()
    assert policy_atoms(policy["Properties"]["PolicyDocument"]["Statement"]) == policy_atoms(published_policy()["Statement"])
    (role_ref,) = policy["Properties"]["Roles"]
    t.has_resource_properties("AWS::EKS::PodIdentityAssociation", {
        "Namespace": AWS_LOAD_BALANCER_CONTROLLER_NAMESPACE, "ServiceAccount": "aws-load-balancer-controller",
        "RoleArn": {"Fn::GetAtt": [role_ref["Ref"], "Arn"]}})
    t.has_resource_properties("AWS::IAM::Role", {"AssumeRolePolicyDocument": {"Statement": [Match.object_like({
        "Principal": {"Service": "pods.eks.amazonaws.com"}})]}})


def test_internal_alb_certificate_tls_policy_and_cidrs(synth_dev):
    spec = _params(synth_dev)
    assert spec["scheme"] == "internal"
    assert spec["sslPolicy"] == ALB_TLS_POLICY
    assert spec["certificateArn"] == ["{{resolve:ssm:/llama3-inf2/dev/alb-certificate-arn}}"]
    assert spec["inboundCIDRs"] == ["10.1.0.0/16"]
    Template.from_json(synth_dev.template("Inference")).resource_count_is("AWS::WAFv2::WebACL", 0)


def test_internet_facing_alb_has_a_rate_limited_waf(synth_dev_internet):
    t = Template.from_json(synth_dev_internet.template("Inference"))
    t.has_resource_properties("AWS::WAFv2::WebACL", {
        "Scope": "REGIONAL", "DefaultAction": {"Allow": {}},
        "Rules": Match.array_with([Match.object_like({"Name": "rate-per-ip", "Action": {"Block": {}},
            "Statement": {"RateBasedStatement": {"Limit": DEFAULT_WAF_REQUESTS_PER_5MIN, "AggregateKeyType": "IP",
                                                 "EvaluationWindowSec": 300}}})])})
    (acl_id,) = t.find_resources("AWS::WAFv2::WebACL")
    spec = _params(synth_dev_internet)
    assert spec["scheme"] == "internet-facing"
    assert spec["wafv2AclArn"] == "${%s.Arn}" % acl_id  # associated by the controller
    assert spec["inboundCIDRs"] == ["10.1.0.0/16", "203.0.113.0/24"]


def test_metrics_server_node_monitoring_and_auto_repair(synth_dev):
    t = Template.from_json(synth_dev.template("Cluster"))
    for name in ("metrics-server", "eks-node-monitoring-agent"):
        t.has_resource_properties("AWS::EKS::Addon", {"AddonName": name})
    t.has_resource_properties("AWS::EKS::Nodegroup", {"NodeRepairConfig": {"Enabled": True}})


def test_cleanup_runs_before_the_controller_is_removed(synth_dev):
    template = synth_dev.template("Addons")
    charts = {lid for lid, r in template["Resources"].items()
              if r["Type"] == "Custom::AWSCDK-EKS-HelmChart" and r["Properties"]["Release"] == "aws-load-balancer-controller"}
    cleanups = [r for r in template["Resources"].values() if r["Type"] == "Custom::ClusterCleanup"]
    assert cleanups and all(charts & set(r.get("DependsOn", [])) for r in cleanups)
