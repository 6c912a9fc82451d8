"""NetworkStack: VPC over the configured AZs, subnets for LBs/nodes/pods, NAT per AZ, tags, flow logs."""

import ipaddress

from config.environments import load_config
from platform_constructs.pod_subnets import split_cidr
from platform_constructs.tags import ELB_TAG, INTERNAL_ELB_TAG, KARPENTER_DISCOVERY_TAG

CFG = load_config({})


def _tags(resource: dict) -> dict:
    return {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}


def _subnets(synth):
    return synth.resources("AWS::EC2::Subnet", "Network").values()


def test_vpc_uses_configured_cidr_and_dns(synth_dev):
    (vpc,) = synth_dev.resources("AWS::EC2::VPC", "Network").values()
    assert vpc["Properties"]["CidrBlock"] == CFG.vpc_cidr
    assert vpc["Properties"]["EnableDnsHostnames"] is True and vpc["Properties"]["EnableDnsSupport"] is True


def test_subnets_span_every_configured_az(synth_dev):
    azs = {s["Properties"]["AvailabilityZone"] for s in _subnets(synth_dev)}
    assert azs == set(CFG.availability_zones) and len(azs) >= 2


def test_public_and_private_subnets_carry_elb_role_tags(synth_dev):
    public = [s for s in _subnets(synth_dev) if s["Properties"].get("MapPublicIpOnLaunch") is True]
    internal = [s for s in _subnets(synth_dev) if _tags(s).get(INTERNAL_ELB_TAG) == "1"]
    assert len(public) == len(CFG.availability_zones)
    assert all(_tags(s).get(ELB_TAG) == "1" for s in public)
    assert len(internal) == len(CFG.availability_zones)


def test_secondary_cidr_with_one_pod_subnet_per_az(synth_dev):
    (block,) = synth_dev.resources("AWS::EC2::VPCCidrBlock", "Network").values()
    assert block["Properties"]["CidrBlock"] == CFG.secondary_cidr == "100.64.0.0/16"
    secondary = ipaddress.ip_network(CFG.secondary_cidr)
    pods = [s for s in _subnets(synth_dev) if ipaddress.ip_network(s["Properties"]["CidrBlock"]).subnet_of(secondary)]
    assert sorted(s["Properties"]["AvailabilityZone"] for s in pods) == sorted(CFG.availability_zones)
    for subnet in pods:
        net = ipaddress.ip_network(subnet["Properties"]["CidrBlock"])
        assert net.num_addresses >= 16384, "pod subnets must hold thousands of pod IPs"
        assert _tags(subnet)[KARPENTER_DISCOVERY_TAG] == CFG.cluster_name
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    # each pod subnet is routed through its AZ's NAT route table
    assocs = synth_dev.resources("AWS::EC2::SubnetRouteTableAssociation", "Network")
    assert len(assocs) == 3 * len(CFG.availability_zones)


def test_private_subnets_sized_for_pods(synth_dev):
    internal = [s for s in _subnets(synth_dev) if _tags(s).get(INTERNAL_ELB_TAG) == "1"]
    assert all(ipaddress.ip_network(s["Properties"]["CidrBlock"]).num_addresses >= 4096 for s in internal)


def test_one_nat_gateway_per_az(synth_dev):
    assert len(synth_dev.resources("AWS::EC2::NatGateway", "Network")) == len(CFG.availability_zones)


def test_flow_logs_capture_all_traffic_to_cloudwatch(synth_dev):
    (flow_log,) = synth_dev.resources("AWS::EC2::FlowLog", "Network").values()
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    assert flow_log["Properties"]["LogDestinationType"] == "cloud-watch-logs"
    group_ref = flow_log["Properties"]["LogGroupName"]["Ref"]
    group = synth_dev.resources("AWS::Logs::LogGroup", "Network")[group_ref]
    assert group["Properties"]["RetentionInDays"] == CFG.log_retention_days


def test_split_cidr():
    assert split_cidr("100.64.0.0/16", 3) == ["100.64.0.0/18", "100.64.64.0/18", "100.64.128.0/18"]
    assert split_cidr("100.64.0.0/16", 2) == ["100.64.0.0/17", "100.64.128.0/17"]
