"""The destroy-time cleanup's Route 53 sweep (issue 13 #4) against moto: external-dns's records of this
cluster go -- the alias and its TXT registry records -- and nobody else's, a second run does nothing."""

from __future__ import annotations

import pytest

from platform_constructs.cleanup.handler import index as cleanup

CLUSTER = "llama3-inf2-dev"
ZONE_NAME = "dev.example.com"
ALB_DNS = "internal-k8s-llama3inf2-0123456789-1234567890.us-east-1.elb.amazonaws.com"
ALB_ZONE = "Z35SXDOTRQ7X7K"  # us-east-1's ELB zone (external-dns provider/aws/aws.go canonicalHostedZones)


def _registry(owner: str, resource: str = "ingress/vllm/openai-api") -> str:
    return f'"heritage=external-dns,external-dns/owner={owner},external-dns/resource={resource}"'


def _upsert(r53, zone, name, type_, *, values=(), alias=None):
    record = {"Name": name, "Type": type_}
    if alias:
        record["AliasTarget"] = {"HostedZoneId": ALB_ZONE, "DNSName": alias, "EvaluateTargetHealth": True}
    else:
        record.update(TTL=300, ResourceRecords=[{"Value": v} for v in values])
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]})


@pytest.fixture
def zone(aws):
    session = aws
    r53 = session.client("route53")
    zone_id = r53.create_hosted_zone(Name=ZONE_NAME, CallerReference="t")["HostedZone"]["Id"].split("/")[-1]
    # Ours: the API's alias (new registry format) and Open WebUI's (old format: TXT at the host).
    _upsert(r53, zone_id, f"llm.{ZONE_NAME}", "A", alias=ALB_DNS)
    _upsert(r53, zone_id, f"a-llm.{ZONE_NAME}", "TXT", values=[_registry(CLUSTER)])
    _upsert(r53, zone_id, f"chat.{ZONE_NAME}", "A", alias=ALB_DNS)
    _upsert(r53, zone_id, f"chat.{ZONE_NAME}", "TXT", values=[_registry(CLUSTER, "ingress/openai-webui/open-webui")])
    # Another cluster's external-dns, and a record a person made: untouched.
    _upsert(r53, zone_id, f"other.{ZONE_NAME}", "A", alias=ALB_DNS)
    _upsert(r53, zone_id, f"a-other.{ZONE_NAME}", "TXT", values=[_registry("llama3-inf2-prod")])
    _upsert(r53, zone_id, f"www.{ZONE_NAME}", "CNAME", values=["example.org"])
    _upsert(r53, zone_id, f"www.{ZONE_NAME}", "TXT", values=['"v=spf1 -all"'])
    yield session, zone_id


def _names(session, zone_id) -> set[tuple[str, str]]:
    records = session.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {(r["Name"].rstrip("."), r["Type"]) for r in records if r["Type"] not in ("NS", "SOA")}


def _run(session, zone_id, hosted_zone_id="use-fixture"):
    config = cleanup.CleanupConfig(cluster_name=CLUSTER, vpc_id="vpc-00000000000000000",
                                   hosted_zone_id=zone_id if hosted_zone_id == "use-fixture" else hosted_zone_id)
    cleaner = cleanup.Cleaner(cluster_name=CLUSTER, vpc_id=config.vpc_id, deadline=float("inf"), session=session,
                              hosted_zone_id=config.hosted_zone_id)
    cleaner.delete_dns_records()
    return cleaner.report


def test_deletes_this_clusters_records_and_registry_only(zone):
    session, zone_id = zone
    report = _run(session, zone_id)
    assert report.errors == []
    assert sorted(report.deleted["dns-record"]) == sorted([
        f"A llm.{ZONE_NAME}", f"TXT a-llm.{ZONE_NAME}", f"A chat.{ZONE_NAME}", f"TXT chat.{ZONE_NAME}"])
    assert _names(session, zone_id) == {
        (f"other.{ZONE_NAME}", "A"), (f"a-other.{ZONE_NAME}", "TXT"),
        (f"www.{ZONE_NAME}", "CNAME"), (f"www.{ZONE_NAME}", "TXT")}


def test_a_second_run_and_no_zone_do_nothing(zone):
    session, zone_id = zone
    _run(session, zone_id)
    assert _run(session, zone_id).deleted == {}
    before = _names(session, zone_id)
    assert _run(session, zone_id, hosted_zone_id=None).deleted == {} and _names(session, zone_id) == before


def test_the_zone_comes_from_the_environment(monkeypatch):
    env = {cleanup.ENV_CLUSTER_NAME: CLUSTER, cleanup.ENV_VPC_ID: "vpc-1", cleanup.ENV_HOSTED_ZONE_ID: "Z0123"}
    assert cleanup.CleanupConfig.from_env(env).hosted_zone_id == "Z0123"
    assert cleanup.CleanupConfig.from_env({**env, cleanup.ENV_HOSTED_ZONE_ID: ""}).hosted_zone_id is None


@pytest.mark.parametrize("name,targets", [
    ("a-llm.dev.example.com", [("llm.dev.example.com", "A")]),
    ("cname-www.dev.example.com", [("www.dev.example.com", "CNAME")]),
    ("llm.dev.example.com", [("llm.dev.example.com", "A"), ("llm.dev.example.com", "AAAA"), ("llm.dev.example.com", "CNAME")]),
])
def test_registry_names_map_to_their_records(name, targets):
    assert cleanup.registry_targets(name) == targets


def test_the_handler_knows_the_registry_types_external_dns_is_allowed_to_write():
    """The handler is a Lambda asset (standard library + boto3, no config/), so it keeps its own table:
    the same types whose TXT names config/exposure.py grants external-dns and the cleanup."""
    from config.exposure import REGISTRY_TXT_TYPES

    assert set(cleanup.REGISTRY_TYPES) == set(REGISTRY_TXT_TYPES)
