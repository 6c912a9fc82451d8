"""Destroy-time cleanup of what Kubernetes controllers created outside CloudFormation.

Runs as the onEvent handler of a CloudFormation custom resource (CDK Provider framework). Create and
Update do nothing. Delete, which CloudFormation runs before Karpenter, the cluster and the VPC are
deleted (the resource depends on them), removes, for one cluster:

1. EC2 instances Karpenter launched (tag `karpenter.sh/nodepool` + the cluster's ownership tag) --
   terminated, then waited for until they are `terminated`;
2. load balancers and target groups the AWS Load Balancer Controller or the in-tree cloud provider
   created (cluster tags), classic ELBs too;
3. leftover, unattached ENIs of the VPC CNI, unattached EBS volumes of the EBS CSI driver or
   Karpenter, security groups the controllers created, and Karpenter's launch templates;
0. (first, when HOSTED_ZONE_ID is set) the Route 53 records external-dns wrote for this cluster: the
   ones its TXT registry marks as owned by the cluster name. external-dns deletes them itself when an
   Ingress goes (policy sync), but only at its next sync, and the Addons stack may uninstall it before.

Never touched: anything CloudFormation manages (`aws:cloudformation:stack-id` tag) and the cluster
security group EKS manages itself (`aws:eks:cluster-name`). Not-found errors count as done, so a
second run is a no-op. Every other AWS error is collected and reported in the failure reason. The
whole run stops at a deadline: TIMEOUT_SECONDS, capped by the Lambda's remaining time.

Which cluster and VPC: CLUSTER_NAME and VPC_ID in the function's environment, set by the construct
(platform_constructs/cleanup/__init__.py) -- never the invocation event, so whoever can invoke the
function cannot point it at another cluster. An event that names a cluster or VPC other than those is
refused before any AWS call. What counts as "this cluster's" is OWNER_TAGS below; the function's IAM
policy is generated from the same table, so the role allows exactly the deletes the handler attempts.

Standard library + boto3 only (both are in the Lambda Python runtime).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

NODEPOOL_TAG = "karpenter.sh/nodepool"
EKS_CLUSTER_TAG = "eks:eks-cluster-name"
ELBV2_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
VPC_CNI_CLUSTER_TAG = "cluster.k8s.amazonaws.com/name"
EBS_CSI_CLUSTER_TAG = "KubernetesCluster"
EBS_CSI_CLUSTER_NAME_TAG = "ebs.csi.aws.com/cluster-name"
CFN_STACK_TAG = "aws:cloudformation:stack-id"
EKS_MANAGED_SG_TAG = "aws:eks:cluster-name"
CLUSTER = "{cluster}"  # placeholder in OWNER_TAGS for the cluster's name
# The tags by which a resource is one a controller created for this cluster, per kind (any one pair
# suffices), as the controllers write them:
#  - Karpenter v1.14.1 (aws/karpenter-provider-aws pkg/utils/utils.go GetTags): instances, their
#    volumes and ENIs, and launch templates get kubernetes.io/cluster/<name>=owned,
#    eks:eks-cluster-name=<name> and karpenter.sh/nodepool (v1 launch templates no longer carry
#    karpenter.k8s.aws/cluster: pkg/providers/launchtemplate finds its own by eks:eks-cluster-name);
#  - AWS Load Balancer Controller (kubernetes-sigs/aws-load-balancer-controller pkg/deploy/tracking/
#    provider.go): elbv2.k8s.aws/cluster=<name> on every load balancer, target group, security group;
#  - the in-tree/cloud-provider-aws service controller (kubernetes/cloud-provider-aws pkg/providers/v1/
#    tags.go): kubernetes.io/cluster/<name>=owned on the load balancers and groups it creates;
#  - VPC CNI v1.23 (aws/amazon-vpc-cni-k8s pkg/awsutils/awsutils.go eniClusterTagKey): ENIs get
#    cluster.k8s.amazonaws.com/name=<name>;
#  - EBS CSI driver v1.64 (kubernetes-sigs/aws-ebs-csi-driver pkg/driver/controller.go): with
#    --k8s-tag-cluster-id, volumes get kubernetes.io/cluster/<id>=owned, KubernetesCluster=<id> and
#    ebs.csi.aws.com/cluster-name=<id> (without it only ebs.csi.aws.com/cluster=true, which names no
#    cluster: such volumes are left alone).
_OWNED = ("kubernetes.io/cluster/" + CLUSTER, "owned")
_ELB = (_OWNED, (ELBV2_CLUSTER_TAG, CLUSTER))
OWNER_TAGS: dict[str, tuple[tuple[str, str], ...]] = {
    "instance": (_OWNED,),
    "launch-template": (_OWNED,),
    "load-balancer": _ELB,
    "classic-load-balancer": (_OWNED,),
    "target-group": _ELB,
    "network-interface": (_OWNED, (EKS_CLUSTER_TAG, CLUSTER), (VPC_CNI_CLUSTER_TAG, CLUSTER)),
    "volume": (_OWNED, (EKS_CLUSTER_TAG, CLUSTER), (EBS_CSI_CLUSTER_TAG, CLUSTER), (EBS_CSI_CLUSTER_NAME_TAG, CLUSTER)),
    "security-group": _ELB,
}
# Never deleted whatever else they carry (the IAM policy denies them too): CloudFormation's own
# resources, and the cluster security group EKS creates (it is also tagged kubernetes.io/cluster/<name>).
PROTECTED_TAGS = {
    "instance": (CFN_STACK_TAG,), "launch-template": (CFN_STACK_TAG,), "load-balancer": (CFN_STACK_TAG,),
    "classic-load-balancer": (CFN_STACK_TAG,), "target-group": (CFN_STACK_TAG,),
    "network-interface": (CFN_STACK_TAG,), "volume": (CFN_STACK_TAG,),
    "security-group": (CFN_STACK_TAG, EKS_MANAGED_SG_TAG),
}


def owner_tags(kind: str, cluster_name: str) -> list[tuple[str, str]]:
    """The (key, value) pairs, any of which makes a resource of `kind` this cluster's."""
    return [(k.replace(CLUSTER, cluster_name), v.replace(CLUSTER, cluster_name)) for k, v in OWNER_TAGS[kind]]

# external-dns's TXT registry (kubernetes-sigs/external-dns v0.21.0 endpoint/labels.go, registry/mapper/
# mapper.go): the value `"heritage=external-dns,external-dns/owner=<owner>,..."` marks the owner, and the
# TXT's name is `<type>-<host>` for the record of that type at <host> (older releases: <host> itself).
EXTERNAL_DNS_HERITAGE = "heritage=external-dns"
EXTERNAL_DNS_OWNER_LABEL = "external-dns/owner"
REGISTRY_TYPES = {"a": "A", "aaaa": "AAAA", "cname": "CNAME"}


def external_dns_owner(record: dict) -> str | None:
    """The owner a TXT record set of external-dns's registry names, else None."""
    if record.get("Type") != "TXT":
        return None
    for value in (r.get("Value", "") for r in record.get("ResourceRecords", [])):
        labels = dict(part.split("=", 1) for part in value.strip('"').split(",") if "=" in part)
        if f"heritage={labels.get('heritage')}" == EXTERNAL_DNS_HERITAGE and labels.get(EXTERNAL_DNS_OWNER_LABEL):
            return labels[EXTERNAL_DNS_OWNER_LABEL]
    return None


def registry_targets(txt_name: str) -> list[tuple[str, str]]:
    """(name, type) of the records a registry TXT at `txt_name` stands for."""
    first, _, rest = txt_name.partition(".")
    kind, dash, host_label = first.partition("-")
    if dash and kind in REGISTRY_TYPES and host_label:
        return [(f"{host_label}.{rest}" if rest else host_label, REGISTRY_TYPES[kind])]
    return [(txt_name, t) for t in REGISTRY_TYPES.values()]  # the old format: the TXT shares its record's name
LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]
# Errors meaning "already gone": the desired state is reached.
GONE = {
    "InvalidInstanceID.NotFound", "InvalidGroup.NotFound", "InvalidVolume.NotFound",
    "InvalidNetworkInterfaceID.NotFound", "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateName.NotFoundException", "LoadBalancerNotFound", "TargetGroupNotFound",
    "AccessPointNotFound",
}
RETRYABLE = {"DependencyViolation", "ResourceInUse", "InvalidNetworkInterface.InUse", "VolumeInUse"}


class CleanupError(RuntimeError):
    """One or more AWS calls failed; the message lists each one."""


class CleanupTimeout(CleanupError):
    """The deadline passed before everything was gone; the message lists what remains."""


@dataclass
class Report:
    terminated_instances: list[str] = field(default_factory=list)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, kind: str, resource_id: str) -> None:
        self.deleted.setdefault(kind, []).append(resource_id)

    @property
    def actions(self) -> int:
        return len(self.terminated_instances) + sum(len(v) for v in self.deleted.values())

    def summary(self) -> str:
        parts = [f"terminated {len(self.terminated_instances)} instance(s)"]
        parts += [f"deleted {len(v)} {k}" for k, v in sorted(self.deleted.items())]
        return ", ".join(parts)


def _tags(items: Iterable[dict] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or []}


def _error(exc: ClientError) -> tuple[str, str]:
    err = exc.response.get("Error", {})
    return err.get("Code", "Unknown"), err.get("Message", str(exc))


def _chunks(seq: list, size: int) -> Iterable[list]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


class Cleaner:
    """Finds and removes one cluster's leftovers in one VPC. Clock and sleep are injectable for tests."""

    def __init__(self, *, cluster_name: str, vpc_id: str, deadline: float, session: boto3.Session | None = None,
                 poll_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, hosted_zone_id: str | None = None):
        session = session or boto3.Session()
        cfg = Config(retries={"max_attempts": 8, "mode": "standard"})
        self.ec2 = session.client("ec2", config=cfg)
        self.elbv2 = session.client("elbv2", config=cfg)
        self.elb = session.client("elb", config=cfg)
        self.route53 = session.client("route53", config=cfg) if hosted_zone_id else None
        self.hosted_zone_id = hosted_zone_id
        self.cluster_name = cluster_name
        self.vpc_id = vpc_id
        self.deadline = deadline
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.sleep = sleep
        self.report = Report()

    # --- helpers --------------------------------------------------------------------------------

    def _owned(self, kind: str, tags: dict[str, str]) -> bool:
        """A `kind` resource a controller created for this cluster, and not one CloudFormation or EKS manages."""
        if any(t in tags for t in PROTECTED_TAGS[kind]):
            return False
        return any(tags.get(key) == value for key, value in owner_tags(kind, self.cluster_name))

    def _time_left(self) -> float:
        return self.deadline - self.clock()

    def _wait(self, what: str, remaining: Callable[[], list[str]]) -> None:
        """Poll `remaining()` until it is empty; raise CleanupTimeout at the deadline."""
        while True:
            left = remaining()
            if not left:
                return
            if self._time_left() <= 0:
                raise CleanupTimeout(f"timed out waiting for {what}: still present: {', '.join(sorted(left))}")
            LOG.info("waiting for %s: %s", what, left)
            self.sleep(max(0.0, min(self.poll_seconds, self._time_left())))

    def _call(self, kind: str, resource_id: str, fn: Callable[[], object], *, retry: bool = False) -> bool:
        """Run one delete call; not-found counts as done; retryable errors are retried until the deadline."""
        while True:
            try:
                fn()
                self.report.add(kind, resource_id)
                LOG.info("deleted %s %s", kind, resource_id)
                return True
            except ClientError as exc:
                code, message = _error(exc)
                if code in GONE:
                    return True
                if retry and code in RETRYABLE and self._time_left() > 0:
                    LOG.info("%s %s: %s, retrying", kind, resource_id, code)
                    self.sleep(max(0.0, min(self.poll_seconds, self._time_left())))
                    continue
                self.report.errors.append(f"{kind} {resource_id}: {code}: {message}")
                return False

    # --- instances ------------------------------------------------------------------------------

    def karpenter_instances(self) -> dict[str, str]:
        """Live instances Karpenter launched for this cluster in this VPC: {id: state}."""
        found: dict[str, str] = {}
        owner_filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in owner_tags("instance", self.cluster_name)]
        for owner in owner_filters:
            pages = self.ec2.get_paginator("describe_instances").paginate(Filters=[
                owner,
                {"Name": "tag-key", "Values": [NODEPOOL_TAG]},
                {"Name": "vpc-id", "Values": [self.vpc_id]},
                {"Name": "instance-state-name", "Values": LIVE_STATES},
            ])
            for page in pages:
                for reservation in page.get("Reservations", []):
                    for inst in reservation.get("Instances", []):
                        if self._owned("instance", _tags(inst.get("Tags"))):
                            found[inst["InstanceId"]] = inst["State"]["Name"]
        return found

    def terminate_instances(self) -> None:
        instances = self.karpenter_instances()
        to_stop = sorted(i for i, state in instances.items() if state != "shutting-down")
        for batch in _chunks(to_stop, 500):
            try:
                self.ec2.terminate_instances(InstanceIds=batch)
                self.report.terminated_instances.extend(batch)
            except ClientError:
                # One bad id fails the whole batch: retry one by one to report precisely.
                for instance_id in batch:
                    try:
                        self.ec2.terminate_instances(InstanceIds=[instance_id])
                        self.report.terminated_instances.append(instance_id)
                    except ClientError as exc:
                        code, message = _error(exc)
                        if code not in GONE:
                            self.report.errors.append(f"instance {instance_id}: {code}: {message}")
        if self.report.errors:
            return  # waiting for instances that refused to terminate would only run into the deadline
        self._wait("Karpenter instances to terminate", lambda: list(self.karpenter_instances()))

    # --- load balancers and target groups ---------------------------------------------------------

    def _elbv2_owned(self, kind: str, arns: list[str]) -> list[str]:
        owned = []
        for batch in _chunks(arns, 20):
            for desc in self.elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]:
                if self._owned(kind, _tags(desc.get("Tags"))):
                    owned.append(desc["ResourceArn"])
        return owned

    def delete_load_balancers(self) -> None:
        lbs = []
        for page in self.elbv2.get_paginator("describe_load_balancers").paginate():
            lbs += [lb["LoadBalancerArn"] for lb in page["LoadBalancers"] if lb.get("VpcId") == self.vpc_id]
        for arn in self._elbv2_owned("load-balancer", lbs):
            self._call("load-balancer", arn, lambda arn=arn: self.elbv2.delete_load_balancer(LoadBalancerArn=arn))

        classic = []
        for page in self.elb.get_paginator("describe_load_balancers").paginate():
            classic += [lb["LoadBalancerName"] for lb in page["LoadBalancerDescriptions"]
                        if lb.get("VPCId") == self.vpc_id]
        for batch in _chunks(classic, 20):
            for desc in self.elb.describe_tags(LoadBalancerNames=batch)["TagDescriptions"]:
                name = desc["LoadBalancerName"]
                if self._owned("classic-load-balancer", _tags(desc.get("Tags"))):
                    self._call("classic-load-balancer", name,
                               lambda name=name: self.elb.delete_load_balancer(LoadBalancerName=name))

        tgs = []
        for page in self.elbv2.get_paginator("describe_target_groups").paginate():
            tgs += [tg["TargetGroupArn"] for tg in page["TargetGroups"] if tg.get("VpcId") == self.vpc_id]
        for arn in self._elbv2_owned("target-group", tgs):
            self._call("target-group", arn, lambda arn=arn: self.elbv2.delete_target_group(TargetGroupArn=arn),
                       retry=True)

    # --- ENIs, volumes, security groups, launch templates -------------------------------------------

    def _describe(self, method: str, key: str, filters: list[dict]) -> list[dict]:
        items: list[dict] = []
        for page in self.ec2.get_paginator(method).paginate(Filters=filters):
            items += page.get(key, [])
        return items

    def delete_network_interfaces(self) -> None:
        enis = self._describe("describe_network_interfaces", "NetworkInterfaces", [
            {"Name": "vpc-id", "Values": [self.vpc_id]},
            {"Name": "status", "Values": ["available"]},
        ])
        for eni in enis:
            if self._owned("network-interface", _tags(eni.get("TagSet"))):
                eni_id = eni["NetworkInterfaceId"]
                self._call("network-interface", eni_id,
                           lambda i=eni_id: self.ec2.delete_network_interface(NetworkInterfaceId=i), retry=True)

    def delete_volumes(self) -> None:
        azs = [az["ZoneName"] for az in self.ec2.describe_availability_zones()["AvailabilityZones"]]
        volumes = self._describe("describe_volumes", "Volumes", [
            {"Name": "status", "Values": ["available"]},
            {"Name": "availability-zone", "Values": azs},
        ])
        for vol in volumes:
            if self._owned("volume", _tags(vol.get("Tags"))):
                vol_id = vol["VolumeId"]
                self._call("volume", vol_id, lambda v=vol_id: self.ec2.delete_volume(VolumeId=v), retry=True)

    def delete_security_groups(self) -> None:
        groups = self._describe("describe_security_groups", "SecurityGroups", [
            {"Name": "vpc-id", "Values": [self.vpc_id]},
        ])
        doomed = [g for g in groups if g.get("GroupName") != "default"
                  and self._owned("security-group", _tags(g.get("Tags")))]
        doomed_ids = {g["GroupId"] for g in doomed}
        # Rules in other groups (e.g. the node group) that point at a doomed group block its deletion.
        for g in groups:
            for direction, perms in (("ingress", g.get("IpPermissions", [])), ("egress", g.get("IpPermissionsEgress", []))):
                for perm in perms:
                    pairs = [p for p in perm.get("UserIdGroupPairs", []) if p.get("GroupId") in doomed_ids]
                    if not pairs or g["GroupId"] in doomed_ids:
                        continue
                    rule = {k: v for k, v in perm.items() if k in ("IpProtocol", "FromPort", "ToPort")}
                    rule["UserIdGroupPairs"] = [{"GroupId": p["GroupId"]} for p in pairs]
                    revoke = (self.ec2.revoke_security_group_ingress if direction == "ingress"
                              else self.ec2.revoke_security_group_egress)
                    self._call(f"{direction}-rule", f"{g['GroupId']}->{','.join(p['GroupId'] for p in pairs)}",
                               lambda revoke=revoke, gid=g["GroupId"], rule=rule: revoke(GroupId=gid, IpPermissions=[rule]))
        for g in doomed:
            gid = g["GroupId"]
            self._call("security-group", gid, lambda gid=gid: self.ec2.delete_security_group(GroupId=gid), retry=True)

    def delete_launch_templates(self) -> None:
        """Karpenter's launch templates: its own tags (owner + nodepool), as its role may delete them."""
        templates = self._describe("describe_launch_templates", "LaunchTemplates", [
            *({"Name": f"tag:{k}", "Values": [v]} for k, v in owner_tags("launch-template", self.cluster_name)),
            {"Name": "tag-key", "Values": [NODEPOOL_TAG]},
        ])
        for lt in templates:
            if not self._owned("launch-template", _tags(lt.get("Tags"))):
                continue
            lt_id = lt["LaunchTemplateId"]
            self._call("launch-template", lt_id, lambda i=lt_id: self.ec2.delete_launch_template(LaunchTemplateId=i))

    # --- DNS records of external-dns ---------------------------------------------------------------

    def delete_dns_records(self) -> None:
        """The zone's records external-dns's registry marks as this cluster's (owner id = cluster name),
        and those registry TXT records themselves; nobody else's, nothing without a registry entry."""
        if not self.route53:
            return
        records = []
        for page in self.route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=self.hosted_zone_id):
            records += page["ResourceRecordSets"]
        by_key = {(r["Name"].rstrip(".").lower(), r["Type"]): r for r in records}
        doomed: dict[tuple[str, str], dict] = {}
        for txt in records:
            if external_dns_owner(txt) != self.cluster_name:
                continue
            txt_name = txt["Name"].rstrip(".").lower()
            doomed[(txt_name, "TXT")] = txt
            for key in registry_targets(txt_name):
                if key in by_key:
                    doomed[key] = by_key[key]
        for (name, type_), record in sorted(doomed.items()):
            self._call("dns-record", f"{type_} {name}", lambda record=record: self.route53.change_resource_record_sets(
                HostedZoneId=self.hosted_zone_id,
                ChangeBatch={"Comment": f"destroy-time cleanup of {self.cluster_name}",
                             "Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}))

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> Report:
        phases = (
            self.delete_dns_records,  # first: no name points at a load balancer about to go
            self.terminate_instances,
            self.delete_load_balancers,
            self.delete_network_interfaces,
            self.delete_volumes,
            self.delete_security_groups,
            self.delete_launch_templates,
        )
        for phase in phases:
            if self._time_left() <= 0:
                raise CleanupTimeout(f"timed out before {phase.__name__}; done so far: {self.report.summary()}")
            try:
                phase()
            except ClientError as exc:  # a describe call failed: report it, go on with the other phases
                code, message = _error(exc)
                self.report.errors.append(f"{phase.__name__}: {code}: {message}")
        if self.report.errors:
            raise CleanupError(
                f"cleanup of cluster {self.cluster_name} finished with {len(self.report.errors)} error(s): "
                + "; ".join(self.report.errors)
            )
        LOG.info("cleanup of cluster %s: %s", self.cluster_name, self.report.summary())
        return self.report


# Seconds kept back from the Lambda's own timeout so the handler can report before it is killed.
LAMBDA_MARGIN_SECONDS = 30
# The function's environment (set by the construct; one source for both sides).
ENV_CLUSTER_NAME, ENV_VPC_ID, ENV_TIMEOUT_SECONDS = "CLUSTER_NAME", "VPC_ID", "TIMEOUT_SECONDS"
ENV_HOSTED_ZONE_ID = "HOSTED_ZONE_ID"  # only when external-dns writes into a zone
# Event properties an override would come in; present and different from the environment: refused.
EVENT_OVERRIDES = {"ClusterName": "cluster_name", "VpcId": "vpc_id"}


@dataclass(frozen=True)
class CleanupConfig:
    cluster_name: str
    vpc_id: str
    timeout_seconds: float = 600.0
    poll_seconds: float = 10.0
    hosted_zone_id: str | None = None

    @classmethod
    def from_env(cls, env) -> "CleanupConfig":
        missing = [k for k in (ENV_CLUSTER_NAME, ENV_VPC_ID) if not env.get(k)]
        if missing:
            raise CleanupError(f"environment variables missing: {missing}; they are set by the ClusterCleanup "
                               "construct (platform_constructs/cleanup): redeploy the Addons stack")
        return cls(cluster_name=env[ENV_CLUSTER_NAME], vpc_id=env[ENV_VPC_ID],
                   timeout_seconds=float(env.get(ENV_TIMEOUT_SECONDS, 600)),
                   hosted_zone_id=env.get(ENV_HOSTED_ZONE_ID) or None)


def refuse_overrides(event: dict, config: CleanupConfig) -> None:
    """The event may not choose the cluster or VPC: one naming others is refused, before any AWS call."""
    props = event.get("ResourceProperties") or {}
    for prop, attr in EVENT_OVERRIDES.items():
        if prop in props and props[prop] != getattr(config, attr):
            raise CleanupError(f"refused: the event names {prop}={props[prop]!r}, but this function cleans up only "
                               f"{getattr(config, attr)!r} (its {attr.upper()} environment variable)")


def deadline_for(timeout_seconds: float, context, clock: Callable[[], float] = time.monotonic) -> float:
    budget = float(timeout_seconds)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        budget = min(budget, context.get_remaining_time_in_millis() / 1000.0 - LAMBDA_MARGIN_SECONDS)
    return clock() + max(0.0, budget)


def on_event(event, context, *, config: CleanupConfig | None = None, session: boto3.Session | None = None,
             clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> dict:
    config = config or CleanupConfig.from_env(os.environ)
    refuse_overrides(event, config)
    physical_id = event.get("PhysicalResourceId") or f"cluster-cleanup-{config.cluster_name}"
    if event.get("RequestType") != "Delete":
        return {"PhysicalResourceId": physical_id}
    deadline = deadline_for(config.timeout_seconds, context, clock)
    cleaner = Cleaner(cluster_name=config.cluster_name, vpc_id=config.vpc_id, deadline=deadline, session=session,
                      poll_seconds=config.poll_seconds, clock=clock, sleep=sleep, hosted_zone_id=config.hosted_zone_id)
    report = cleaner.run()
    return {"PhysicalResourceId": physical_id, "Data": {"Summary": report.summary()[:1000]}}


def handler(event, context):  # the Lambda entry point
    LOG.info("event: %s", {k: v for k, v in event.items() if k not in ("ResponseURL",)})
    region = os.environ.get("AWS_REGION")
    return on_event(event, context, session=boto3.Session(region_name=region) if region else None)
