"""The destroy-time cleanup handler against moto's EC2/ELB: what it removes, what it leaves alone."""

from __future__ import annotations

import pytest

from platform_constructs.cleanup.handler import index as cleanup
from tests.platform_constructs.conftest import MOTO_REGION
from tests.support.synth import render

REGION = MOTO_REGION  # the `aws` fixture's (tests/platform_constructs/conftest.py)
CLUSTER = "llama3-inf2-dev"
OTHER_CLUSTER = "someone-elses-cluster"


def _tags(**kv):
    return [{"Key": k, "Value": v} for k, v in kv.items()]


def karpenter_tags(cluster: str, nodepool: str = "inferentia-inf2"):
    return _tags(**{
        f"kubernetes.io/cluster/{cluster}": "owned",
        "eks:eks-cluster-name": cluster,
        "karpenter.sh/nodepool": nodepool,
        "karpenter.sh/nodeclaim": f"{nodepool}-abcde",
    })


class FakeClock:
    """Time that only moves when the handler sleeps: deterministic timeouts."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class Ctx:
    def __init__(self, remaining_ms):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self):
        return self.remaining_ms


@pytest.fixture
def world(aws):
    """A VPC with: 2 Karpenter nodes of this cluster, 1 of another cluster, 1 core node launched by
    CloudFormation (managed node group), plus controller leftovers and look-alikes that must stay."""
    ec2 = aws.client("ec2")
    elbv2 = aws.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    sub_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    sub_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone=f"{REGION}b")["Subnet"]["SubnetId"]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def launch(tags):
        return ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="inf2.xlarge", SubnetId=sub_a,
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"][0]["InstanceId"]

    ours = [launch(karpenter_tags(CLUSTER)), launch(karpenter_tags(CLUSTER, "default"))]
    theirs = launch(karpenter_tags(OTHER_CLUSTER))
    core = launch(_tags(**{f"kubernetes.io/cluster/{CLUSTER}": "owned", "eks:nodegroup-name": "core",
                           "aws:cloudformation:stack-id": "arn:aws:cloudformation:us-east-1:123456789012:stack/x/y"}))

    def sg(name, tags):
        return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc, TagSpecifications=[
            {"ResourceType": "security-group", "Tags": tags}])["GroupId"]

    lb_sg = sg("k8s-vllm-webui", _tags(**{"elbv2.k8s.aws/cluster": CLUSTER}))
    eks_sg = sg("eks-cluster-sg", _tags(**{f"kubernetes.io/cluster/{CLUSTER}": "owned", "aws:eks:cluster-name": CLUSTER}))
    node_sg = sg("nodes", _tags(**{"karpenter.sh/discovery": CLUSTER,
                                   "aws:cloudformation:stack-id": "arn:aws:cloudformation:us-east-1:123456789012:stack/x/y"}))
    other_sg = sg("other", _tags(**{"elbv2.k8s.aws/cluster": OTHER_CLUSTER}))
    # The LB controller lets its load balancer's group reach the nodes: a rule that blocks deletion.
    ec2.authorize_security_group_ingress(GroupId=node_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": lb_sg}]}])

    lb = elbv2.create_load_balancer(Name="k8s-openaiwe-openwebui", Subnets=[sub_a, sub_b], SecurityGroups=[lb_sg],
                                    Scheme="internal", Tags=_tags(**{"elbv2.k8s.aws/cluster": CLUSTER}))["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elbv2.create_target_group(Name="k8s-openaiwe-openwebui", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip",
                                   Tags=_tags(**{"elbv2.k8s.aws/cluster": CLUSTER}))["TargetGroups"][0]["TargetGroupArn"]
    other_lb = elbv2.create_load_balancer(Name="other", Subnets=[sub_a, sub_b], Scheme="internal",
                                          Tags=_tags(**{"elbv2.k8s.aws/cluster": OTHER_CLUSTER}))["LoadBalancers"][0]["LoadBalancerArn"]
    classic = aws.client("elb")
    classic.create_load_balancer(LoadBalancerName="a1b2c3", Subnets=[sub_a], Listeners=[
        {"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
        Tags=_tags(**{f"kubernetes.io/cluster/{CLUSTER}": "owned"}))

    eni = ec2.create_network_interface(SubnetId=sub_a, TagSpecifications=[{"ResourceType": "network-interface",
                                       "Tags": _tags(**{"cluster.k8s.amazonaws.com/name": CLUSTER})}])["NetworkInterface"]["NetworkInterfaceId"]
    other_eni = ec2.create_network_interface(SubnetId=sub_a)["NetworkInterface"]["NetworkInterfaceId"]
    vol = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=10, TagSpecifications=[{"ResourceType": "volume",
                            "Tags": _tags(**{"KubernetesCluster": CLUSTER, f"kubernetes.io/cluster/{CLUSTER}": "owned"})}])["VolumeId"]
    other_vol = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=10, TagSpecifications=[{"ResourceType": "volume",
                                  "Tags": _tags(**{"KubernetesCluster": OTHER_CLUSTER})}])["VolumeId"]
    def launch_template(name, cluster):
        # Karpenter v1.14.1's tags on its launch templates (pkg/utils/utils.go GetTags): no karpenter.k8s.aws/cluster.
        return ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": ami}, TagSpecifications=[
            {"ResourceType": "launch-template", "Tags": karpenter_tags(cluster)}])["LaunchTemplate"]["LaunchTemplateId"]

    lt = launch_template("karpenter.k8s.aws/123", CLUSTER)
    other_lt = launch_template("karpenter.k8s.aws/456", OTHER_CLUSTER)
    other_vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    return dict(session=aws, ec2=ec2, elbv2=elbv2, elb=classic, vpc=vpc, ours=ours, theirs=theirs, core=core,
                lb_sg=lb_sg, eks_sg=eks_sg, node_sg=node_sg, other_sg=other_sg, lb=lb, tg=tg, other_lb=other_lb,
                eni=eni, other_eni=other_eni, vol=vol, other_vol=other_vol, lt=lt, other_lt=other_lt,
                other_vpc=other_vpc)


def delete_event(request="Delete", **props):
    """What CloudFormation sends: the cluster and VPC are not in it (they are the function's environment)."""
    return {"RequestType": request, "PhysicalResourceId": f"cluster-cleanup-{CLUSTER}", "ResourceProperties": props}


def config(world, timeout=600):
    return cleanup.CleanupConfig(cluster_name=CLUSTER, vpc_id=world["vpc"], timeout_seconds=timeout)


def states(ec2, ids):
    out = {}
    for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for i in r["Instances"]:
            out[i["InstanceId"]] = i["State"]["Name"]
    return out


def count_calls(session_client, names):
    """Count API calls by operation name on a boto3 client (botocore event hook)."""
    calls = []
    session_client.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    return calls


def run(world, *, clock=None, timeout=600, ctx=None, poll=5.0):
    clock = clock or FakeClock()
    return cleanup.on_event(delete_event(), ctx, config=config(world, timeout), session=world["session"],
                            clock=clock, sleep=clock.sleep)


def test_terminates_only_this_clusters_karpenter_instances(world):
    out = run(world)
    st = states(world["ec2"], world["ours"] + [world["theirs"], world["core"]])
    assert all(st[i] == "terminated" for i in world["ours"]), st
    assert st[world["theirs"]] == "running"
    assert st[world["core"]] == "running", "a CloudFormation-managed node must be left to CloudFormation"
    assert "terminated 2 instance(s)" in out["Data"]["Summary"]
    assert out["PhysicalResourceId"] == f"cluster-cleanup-{CLUSTER}"


def test_removes_controller_leftovers_and_keeps_the_rest(world):
    run(world)
    ec2, elbv2 = world["ec2"], world["elbv2"]
    lbs = {lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]}
    assert world["lb"] not in lbs and world["other_lb"] in lbs
    assert world["tg"] not in {tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]}
    assert world["elb"].describe_load_balancers()["LoadBalancerDescriptions"] == []
    enis = {e["NetworkInterfaceId"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert world["eni"] not in enis and world["other_eni"] in enis
    vols = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert world["vol"] not in vols and world["other_vol"] in vols
    sgs = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert world["lb_sg"] not in sgs, "the controller's security group is deleted"
    assert {world["eks_sg"], world["node_sg"], world["other_sg"]} <= sgs, "EKS-, CFN- and other-owned groups stay"
    node_sg = ec2.describe_security_groups(GroupIds=[world["node_sg"]])["SecurityGroups"][0]
    assert not any(p.get("UserIdGroupPairs") for p in node_sg["IpPermissions"]), "the rule pointing at it is revoked"
    assert [t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]] == [world["other_lt"]]


def test_second_run_is_a_no_op(world):
    run(world)
    ec2 = world["session"].client("ec2")
    mutating = []
    world["session"].events.register(
        "before-call.*.*",
        lambda model, **_: mutating.append(model.name) if not model.name.startswith("Describe") else None)
    out = run(world)
    assert mutating == [], f"second run changed something: {mutating}"
    assert out["Data"]["Summary"].startswith("terminated 0 instance(s)")
    assert states(ec2, [world["theirs"]])[world["theirs"]] == "running"


def test_create_and_update_do_nothing(world):
    for request in ("Create", "Update"):
        out = cleanup.on_event(delete_event(request=request), None, config=config(world), session=world["session"])
        assert out == {"PhysicalResourceId": f"cluster-cleanup-{CLUSTER}"}
    assert set(states(world["ec2"], world["ours"]).values()) == {"running"}


def test_aws_errors_are_reported(world):
    # An instance with termination protection: TerminateInstances fails with OperationNotPermitted.
    protected = world["ours"][0]
    world["ec2"].modify_instance_attribute(InstanceId=protected, DisableApiTermination={"Value": True})
    with pytest.raises(cleanup.CleanupError) as err:
        run(world)
    msg = str(err.value)
    assert protected in msg and "OperationNotPermitted" in msg
    assert CLUSTER in msg
    # The other instance was still terminated: one failure does not stop the rest.
    assert states(world["ec2"], [world["ours"][1]])[world["ours"][1]] == "terminated"


def test_describe_errors_are_reported_not_raised_raw(world):
    def deny(**_):
        from botocore.exceptions import ClientError
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}, "DescribeVolumes")
    world["session"].events.register("before-call.ec2.DescribeVolumes", deny)
    with pytest.raises(cleanup.CleanupError) as err:
        run(world)
    assert "delete_volumes: UnauthorizedOperation: not allowed" in str(err.value)
    # The other phases still ran.
    assert set(states(world["ec2"], world["ours"]).values()) == {"terminated"}


def _slow_termination(world):
    """Make DescribeInstances report this cluster's instances as still shutting down (real EC2 takes
    minutes; moto terminates at once)."""
    def still_shutting_down(parsed, **_):
        for r in parsed.get("Reservations", []):
            for i in r["Instances"]:
                if i["InstanceId"] in world["ours"]:
                    i["State"] = {"Code": 32, "Name": "shutting-down"}
    world["session"].events.register("after-call.ec2.DescribeInstances", still_shutting_down)


def test_timeout_is_honoured(world):
    _slow_termination(world)
    clock = FakeClock()
    start = clock.now
    with pytest.raises(cleanup.CleanupTimeout) as err:
        run(world, clock=clock, timeout=60)
    assert clock.now - start <= 60, "never sleeps past the deadline"
    assert clock.now - start == pytest.approx(60)
    assert all(i in str(err.value) for i in world["ours"])
    # It stopped at the deadline: the later phases did not run.
    lbs = {lb["LoadBalancerArn"] for lb in world["elbv2"].describe_load_balancers()["LoadBalancers"]}
    assert world["lb"] in lbs


def test_lambda_remaining_time_caps_the_timeout(world):
    _slow_termination(world)
    clock = FakeClock()
    start = clock.now
    # 90 s left in the Lambda, 30 s kept back for reporting: 60 s budget despite TimeoutSeconds=600.
    with pytest.raises(cleanup.CleanupTimeout):
        run(world, clock=clock, timeout=600, ctx=Ctx(remaining_ms=90_000))
    assert clock.now - start == pytest.approx(60)


def _snapshot(world):
    """Every resource id in the account, to compare before and after."""
    ec2, elbv2, elb = world["ec2"], world["elbv2"], world["elb"]
    return {
        "instances": states(ec2, world["ours"] + [world["theirs"], world["core"]]),
        "enis": sorted(e["NetworkInterfaceId"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]),
        "volumes": sorted(v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]),
        "groups": sorted(g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]),
        "templates": sorted(t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]),
        "lbs": sorted(lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]),
        "classic": sorted(lb["LoadBalancerName"] for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]),
    }


@pytest.mark.parametrize("override", [{"ClusterName": OTHER_CLUSTER}, {"VpcId": "other_vpc"}],
                         ids=["another-cluster", "another-vpc"])
def test_an_event_naming_another_cluster_or_vpc_is_refused_and_changes_nothing(world, override):
    """Only the function's environment says which cluster and VPC: an event cannot redirect it."""
    props = {k: world.get(v, v) for k, v in override.items()}
    before = _snapshot(world)
    calls = []
    world["session"].events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    with pytest.raises(cleanup.CleanupError, match=f"refused: the event names {next(iter(props))}"):
        cleanup.on_event(delete_event(**props), None, config=config(world), session=world["session"])
    assert calls == [], "refused before any AWS call"
    assert _snapshot(world) == before


def test_an_event_repeating_the_configured_cluster_is_accepted(world):
    """A resource deployed before the change still sends ClusterName/VpcId: equal values are fine."""
    out = cleanup.on_event(delete_event(ClusterName=CLUSTER, VpcId=world["vpc"]), None, config=config(world),
                           session=world["session"], clock=FakeClock(), sleep=lambda s: None)
    assert "terminated 2 instance(s)" in out["Data"]["Summary"]


def test_the_handler_reads_cluster_and_vpc_from_its_environment(world, monkeypatch):
    monkeypatch.setenv("CLUSTER_NAME", CLUSTER)
    monkeypatch.setenv("VPC_ID", world["vpc"])
    monkeypatch.setenv("TIMEOUT_SECONDS", "600")
    monkeypatch.setattr(cleanup.boto3, "Session", lambda **kw: world["session"])
    out = cleanup.handler(delete_event(), None)
    assert "terminated 2 instance(s)" in out["Data"]["Summary"]
    assert set(states(world["ec2"], world["ours"]).values()) == {"terminated"}


def test_missing_environment_named(aws, monkeypatch):
    monkeypatch.delenv("VPC_ID", raising=False)
    monkeypatch.setenv("CLUSTER_NAME", CLUSTER)
    with pytest.raises(cleanup.CleanupError, match=r"VPC_ID.*redeploy the Addons stack"):
        cleanup.on_event(delete_event(), None, session=aws)


# --- the handler and its synthesized IAM policy agree --------------------------------------------------

def _allows(statements, action, resource_type, tags, in_vpc) -> bool:
    """IAM's answer for one call, for the condition operators the cleanup policy uses."""
    def holds(op, key, want):
        if key == "ec2:Vpc":
            return op == "ArnEquals" and in_vpc
        tag = key.removeprefix("aws:ResourceTag/")
        return {"StringEquals": lambda: tags.get(tag) == want, "StringLike": lambda: want == "*" and tag in tags,
                "Null": lambda: (tag not in tags) == (want == "true")}[op]()

    for st in statements:
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        resources = [st["Resource"]] if isinstance(st["Resource"], (str, dict)) else st["Resource"]
        if action in actions and any(f":{resource_type}/" in render(r) for r in resources) and all(
                holds(op, k, v) for op, kv in st.get("Condition", {}).items() for k, v in kv.items()):
            return True
    return False


DELETE_CALLS = {  # operation -> (IAM action, ARN resource type, request parameter naming the resource)
    "TerminateInstances": ("ec2:TerminateInstances", "instance", "InstanceIds"),
    "DeleteNetworkInterface": ("ec2:DeleteNetworkInterface", "network-interface", "NetworkInterfaceId"),
    "DeleteVolume": ("ec2:DeleteVolume", "volume", "VolumeId"),
    "DeleteSecurityGroup": ("ec2:DeleteSecurityGroup", "security-group", "GroupId"),
    "RevokeSecurityGroupIngress": ("ec2:RevokeSecurityGroupIngress", "security-group", "GroupId"),
    "DeleteLaunchTemplate": ("ec2:DeleteLaunchTemplate", "launch-template", "LaunchTemplateId"),
    "DeleteLoadBalancer": ("elasticloadbalancing:DeleteLoadBalancer", "loadbalancer", None),
    "DeleteTargetGroup": ("elasticloadbalancing:DeleteTargetGroup", "targetgroup", "TargetGroupArn"),
}


def _all_tags(world) -> dict[str, dict]:
    ec2, elbv2, elb = world["ec2"], world["elbv2"], world["elb"]
    out = {}
    for r in ec2.describe_instances()["Reservations"]:
        out.update({i["InstanceId"]: cleanup._tags(i.get("Tags")) for i in r["Instances"]})
    out.update({e["NetworkInterfaceId"]: cleanup._tags(e.get("TagSet"))
                for e in ec2.describe_network_interfaces()["NetworkInterfaces"]})
    out.update({v["VolumeId"]: cleanup._tags(v.get("Tags")) for v in ec2.describe_volumes()["Volumes"]})
    out.update({g["GroupId"]: cleanup._tags(g.get("Tags")) for g in ec2.describe_security_groups()["SecurityGroups"]})
    out.update({t["LaunchTemplateId"]: cleanup._tags(t.get("Tags"))
                for t in ec2.describe_launch_templates()["LaunchTemplates"]})
    arns = [lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]]
    arns += [tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]]
    out.update({d["ResourceArn"]: cleanup._tags(d.get("Tags")) for d in elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]})
    names = [lb["LoadBalancerName"] for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]]
    out.update({d["LoadBalancerName"]: cleanup._tags(d.get("Tags"))
                for d in elb.describe_tags(LoadBalancerNames=names)["TagDescriptions"]})
    return out


@pytest.fixture(scope="module")
def cleanup_statements(synth_dev):
    """The handler role's statements as the Addons stack synthesizes them for the dev cluster."""
    from config.environments import ENVIRONMENTS

    assert ENVIRONMENTS["dev"].cluster_name == CLUSTER
    return [st for lid, r in synth_dev.resources("AWS::IAM::Policy", "Addons").items() if "ClusterCleanupHandler" in lid
            for st in r["Properties"]["PolicyDocument"]["Statement"]]


def test_every_delete_the_handler_makes_is_one_its_role_allows(world, cleanup_statements):
    tags, calls = _all_tags(world), []
    # before-parameter-build sees each call's API parameters as the handler passed them.
    world["session"].events.register("before-parameter-build.*.*",
                                     lambda model, params, **_: calls.append((model.name, dict(params))))
    run(world)
    deletes = [(name, params) for name, params in calls if name in DELETE_CALLS]
    assert {name for name, _ in deletes} == set(DELETE_CALLS), "the world exercises every kind of delete"
    for name, params in deletes:
        action, resource_type, key = DELETE_CALLS[name]
        ids = params.get(key) if key else params.get("LoadBalancerArn") or params.get("LoadBalancerName")
        for rid in [ids] if isinstance(ids, str) else ids:
            assert _allows(cleanup_statements, action, resource_type, tags[rid], in_vpc=True), (name, rid, tags[rid])


def test_the_role_refuses_what_the_handler_leaves(world, cleanup_statements):
    """Other clusters', CloudFormation's and EKS's resources, and ours in another VPC: IAM says no too."""
    tags = _all_tags(world)
    kept = [("ec2:TerminateInstances", "instance", world["theirs"]), ("ec2:TerminateInstances", "instance", world["core"]),
            ("ec2:DeleteSecurityGroup", "security-group", world["eks_sg"]),
            ("ec2:DeleteSecurityGroup", "security-group", world["other_sg"]),
            ("ec2:DeleteVolume", "volume", world["other_vol"]),
            ("ec2:DeleteNetworkInterface", "network-interface", world["other_eni"]),
            ("ec2:DeleteLaunchTemplate", "launch-template", world["other_lt"]),
            ("elasticloadbalancing:DeleteLoadBalancer", "loadbalancer", world["other_lb"])]
    for action, resource_type, rid in kept:
        assert not _allows(cleanup_statements, action, resource_type, tags[rid], in_vpc=True), (action, rid)
    # This cluster's ENI and group, but in another VPC: the ec2:Vpc condition refuses them.
    for action, resource_type, rid in [("ec2:DeleteNetworkInterface", "network-interface", world["eni"]),
                                       ("ec2:DeleteSecurityGroup", "security-group", world["lb_sg"])]:
        assert not _allows(cleanup_statements, action, resource_type, tags[rid], in_vpc=False), (action, rid)
