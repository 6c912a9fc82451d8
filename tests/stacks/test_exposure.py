"""Issue 13 #3/#4 on the real synthesized stacks: external-dns only with a zone, pinned, its role limited to
the zone and the configured names; the IdP client's secret readable by the External Secrets Operator."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from config.names import EXTERNAL_DNS_NAMESPACE
from config.secrets import WEBUI_OIDC_SECRET
from config.versions import EXTERNAL_DNS_CHART_REPO, EXTERNAL_DNS_CHART_VERSION, EXTERNAL_DNS_VERSION
from config.exposure import record_names
from tests.support.charts import OIDC, OIDC_DNS
from tests.support.synth import render


def test_no_external_dns_without_a_zone(synth_dev):
    assert "external-dns" not in synth_dev.helm_charts("Addons")
    assert not [m for m in synth_dev.manifests("Inference") if m["metadata"]["name"] == WEBUI_OIDC_SECRET]


def test_external_dns_is_pinned_and_writes_only_the_zone_by_txt_ownership(synth_dev_exposed):
    chart = synth_dev_exposed.helm_charts("Addons")["external-dns"]
    assert (chart["Repository"], chart["Version"], chart["Namespace"]) == (
        EXTERNAL_DNS_CHART_REPO, EXTERNAL_DNS_CHART_VERSION, EXTERNAL_DNS_NAMESPACE)
    v = chart["Values"]
    assert v["image"]["tag"] == EXTERNAL_DNS_VERSION and v["provider"] == {"name": "aws"}
    assert (v["policy"], v["registry"], v["txtOwnerId"]) == ("sync", "txt", OIDC_DNS.cluster_name)
    assert v["domainFilters"] == [OIDC_DNS.dns_zone_name] and v["sources"] == ["ingress"]
    assert set(v["extraArgs"]) == {f"--zone-id-filter={OIDC_DNS.dns_hosted_zone_id}", "--ingress-class=alb-inference"}


def test_external_dns_role_changes_only_the_configured_names_in_the_zone(synth_dev_exposed):
    t = Template.from_json(synth_dev_exposed.template("Addons"))
    (policy,) = t.find_resources("AWS::IAM::Policy", {"Properties": {
        "PolicyName": Match.string_like_regexp("ExternalDns")}}).values()
    statements = render(policy["Properties"]["PolicyDocument"]["Statement"])
    zone = f"arn:aws:route53:::hostedzone/{OIDC_DNS.dns_hosted_zone_id}"
    change = next(s for s in statements if s["Action"] == "route53:ChangeResourceRecordSets")
    assert change["Resource"] == zone
    names = change["Condition"]["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"]
    assert names == record_names(OIDC_DNS.alb_hostnames)
    assert {"llm.dev.example.com", "a-llm.dev.example.com", "chat.dev.example.com", "a-chat.dev.example.com"} <= set(names)
    wildcard = [s for s in statements if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcard] == ["route53:ListHostedZones"]
    t.has_resource_properties("AWS::EKS::PodIdentityAssociation", {
        "Namespace": EXTERNAL_DNS_NAMESPACE, "ServiceAccount": "external-dns"})


def test_the_secrets_operator_reads_the_idp_client_secret(synth_dev_exposed):
    t = Template.from_json(synth_dev_exposed.template("Inference"))
    text = json.dumps(render(t.to_json()["Resources"]))
    assert f"secret:{OIDC.client_secret_name}-??????" in text
    (ext,) = [m for m in synth_dev_exposed.manifests("Inference")
              if m["kind"] == "ExternalSecret" and m["metadata"]["name"] == WEBUI_OIDC_SECRET]
    assert {d["secretKey"]: d["remoteRef"] for d in ext["spec"]["data"]} == {
        "clientID": {"key": OIDC.client_secret_name, "property": "client_id"},
        "clientSecret": {"key": OIDC.client_secret_name, "property": "client_secret"}}


def test_the_destroy_time_cleanup_may_delete_only_external_dns_records_of_the_names(synth_dev, synth_dev_exposed):
    from platform_constructs.cleanup.handler import index as cleanup

    def cleanup_function(synth):
        t = Template.from_json(synth.template("Addons"))
        return [f for f in t.find_resources("AWS::Lambda::Function").values()
                if cleanup.ENV_CLUSTER_NAME in (f["Properties"].get("Environment") or {}).get("Variables", {})]

    (plain,) = cleanup_function(synth_dev)
    assert cleanup.ENV_HOSTED_ZONE_ID not in plain["Properties"]["Environment"]["Variables"]
    (exposed,) = cleanup_function(synth_dev_exposed)
    assert exposed["Properties"]["Environment"]["Variables"][cleanup.ENV_HOSTED_ZONE_ID] == OIDC_DNS.dns_hosted_zone_id
    t = Template.from_json(synth_dev_exposed.template("Addons"))
    statements = [s for p in t.find_resources("AWS::IAM::Policy").values()
                  for s in render(p["Properties"]["PolicyDocument"]["Statement"]) if s.get("Sid") == "DeleteDnsRecords"]
    assert statements == [{
        "Sid": "DeleteDnsRecords", "Effect": "Allow", "Action": "route53:ChangeResourceRecordSets",
        "Resource": f"arn:aws:route53:::hostedzone/{OIDC_DNS.dns_hosted_zone_id}",
        "Condition": {"ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": record_names(OIDC_DNS.alb_hostnames),
            "route53:ChangeResourceRecordSetsActions": ["DELETE"]}}}]
