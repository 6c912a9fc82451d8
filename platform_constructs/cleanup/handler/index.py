"""Destroy-time cleanup of what Kubernetes controllers created outside CloudFormation.

Runs as the onEvent handler of a CloudFormation custom resource (CDK Provider framework). Create and
Update do nothing. Delete, which CloudFormation runs before Karpenter, the cluster and the VPC are
deleted (the resource depends on them), removes, for one cluster:

1. EC2 instances Karpenter launched (tag `karpenter.sh/nodepool` + the cluster's ownership tag) --
   terminated, then waited for until they are `terminated`;
2. load balancers and target groups the AWS Load Balancer Controller or the in-tree cloud provider
   created (cluster tags), classic ELBs too;
3. leftover, unattached ENIs of the VPC CNI, unattached EBS volumes of the EBS CSI driver or
   Karpenter, security groups the controllers created, and Karpenter's launch templates.

Never touched: anything CloudFormation manages (`aws:cloudformation:stack-id` tag) and the cluster
security group EKS manages itself (`aws:eks:cluster-name`). Not-found errors count as done, so a
second run is a no-op. Every other AWS error is collected and reported in the failure reason. The
whole run stops at a deadline: `TimeoutSeconds`, capped by the Lambda's remaining time.

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
LAUNCH_TEMPLATE_CLUSTER_TAG = "karpenter.k8s.aws/cluster"
EKS_CLUSTER_TAG = "eks:eks-cluster-name"
ELBV2_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
VPC_CNI_CLUSTER_TAG = "cluster.k8s.amazonaws.com/name"
EBS_CSI_CLUSTER_TAG = "KubernetesCluster"
CFN_STACK_TAG = "aws:cloudformation:stack-id"
EKS_MANAGED_SG_TAG = "aws:eks:cluster-name"
LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]
# Errors meaning "already gone": the desired state is reached.
GONE = {
    "InvalidInstanceID.NotFound", "InvalidGroup.NotFound", "InvalidVolume.NotFound",
    "InvalidNetworkInterfaceID.NotFound", "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateName.NotFoundException", "LoadBalancerNotFound", "TargetGroupNotFound",
    "AccessPointNotFound",
}
RETRYABLE = {"DependencyViolation", "ResourceInUse", "InvalidNetworkInterface.InUse", "VolumeInUse"}


def cluster_tag(cluster_name: str) -> str:
    return f"kubernetes.io/cluster/{cluster_name}"


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
                 sleep: Callable[[float], None] = time.sleep):
        session = session or boto3.Session()
        cfg = Config(retries={"max_attempts": 8, "mode": "standard"})
        self.ec2 = session.client("ec2", config=cfg)
        self.elbv2 = session.client("elbv2", config=cfg)
        self.elb = session.client("elb", config=cfg)
        self.cluster_name = cluster_name
        self.vpc_id = vpc_id
        self.deadline = deadline
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.sleep = sleep
        self.report = Report()

    # --- helpers --------------------------------------------------------------------------------

    def _owned(self, tags: dict[str, str]) -> bool:
        """A resource a controller created for this cluster, and not one CloudFormation or EKS manages."""
        if CFN_STACK_TAG in tags or EKS_MANAGED_SG_TAG in tags:
            return False
        return (
            tags.get(cluster_tag(self.cluster_name)) == "owned"
            or tags.get(ELBV2_CLUSTER_TAG) == self.cluster_name
            or tags.get(EKS_CLUSTER_TAG) == self.cluster_name
            or tags.get(VPC_CNI_CLUSTER_TAG) == self.cluster_name
            or tags.get(EBS_CSI_CLUSTER_TAG) == self.cluster_name
        )

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
        owner_filters = (
            {"Name": f"tag:{cluster_tag(self.cluster_name)}", "Values": ["owned"]},
            {"Name": f"tag:{EKS_CLUSTER_TAG}", "Values": [self.cluster_name]},
        )
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
                        if CFN_STACK_TAG not in _tags(inst.get("Tags")):
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

    def _elbv2_owned(self, arns: list[str]) -> list[str]:
        owned = []
        for batch in _chunks(arns, 20):
            for desc in self.elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]:
                if self._owned(_tags(desc.get("Tags"))):
                    owned.append(desc["ResourceArn"])
        return owned

    def delete_load_balancers(self) -> None:
        lbs = []
        for page in self.elbv2.get_paginator("describe_load_balancers").paginate():
            lbs += [lb["LoadBalancerArn"] for lb in page["LoadBalancers"] if lb.get("VpcId") == self.vpc_id]
        for arn in self._elbv2_owned(lbs):
            self._call("load-balancer", arn, lambda arn=arn: self.elbv2.delete_load_balancer(LoadBalancerArn=arn))

        classic = []
        for page in self.elb.get_paginator("describe_load_balancers").paginate():
            classic += [lb["LoadBalancerName"] for lb in page["LoadBalancerDescriptions"]
                        if lb.get("VPCId") == self.vpc_id]
        for batch in _chunks(classic, 20):
            for desc in self.elb.describe_tags(LoadBalancerNames=batch)["TagDescriptions"]:
                name = desc["LoadBalancerName"]
                if self._owned(_tags(desc.get("Tags"))):
                    self._call("classic-load-balancer", name,
                               lambda name=name: self.elb.delete_load_balancer(LoadBalancerName=name))

        tgs = []
        for page in self.elbv2.get_paginator("describe_target_groups").paginate():
            tgs += [tg["TargetGroupArn"] for tg in page["TargetGroups"] if tg.get("VpcId") == self.vpc_id]
        for arn in self._elbv2_owned(tgs):
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
            if self._owned(_tags(eni.get("TagSet"))):
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
            if self._owned(_tags(vol.get("Tags"))):
                vol_id = vol["VolumeId"]
                self._call("volume", vol_id, lambda v=vol_id: self.ec2.delete_volume(VolumeId=v), retry=True)

    def delete_security_groups(self) -> None:
        groups = self._describe("describe_security_groups", "SecurityGroups", [
            {"Name": "vpc-id", "Values": [self.vpc_id]},
        ])
        doomed = [g for g in groups if g.get("GroupName") != "default" and self._owned(_tags(g.get("Tags")))]
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
        templates = self._describe("describe_launch_templates", "LaunchTemplates", [
            {"Name": f"tag:{LAUNCH_TEMPLATE_CLUSTER_TAG}", "Values": [self.cluster_name]},
        ])
        for lt in templates:
            lt_id = lt["LaunchTemplateId"]
            self._call("launch-template", lt_id, lambda i=lt_id: self.ec2.delete_launch_template(LaunchTemplateId=i))

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> Report:
        phases = (
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


def deadline_for(timeout_seconds: float, context, clock: Callable[[], float] = time.monotonic) -> float:
    budget = float(timeout_seconds)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        budget = min(budget, context.get_remaining_time_in_millis() / 1000.0 - LAMBDA_MARGIN_SECONDS)
    return clock() + max(0.0, budget)


def on_event(event, context, *, session: boto3.Session | None = None, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> dict:
    props = event.get("ResourceProperties", {})
    missing = [k for k in ("ClusterName", "VpcId") if not props.get(k)]
    if missing:
        raise CleanupError(f"custom resource properties missing: {missing}")
    physical_id = event.get("PhysicalResourceId") or f"cluster-cleanup-{props['ClusterName']}"
    if event.get("RequestType") != "Delete":
        return {"PhysicalResourceId": physical_id}
    deadline = deadline_for(float(props.get("TimeoutSeconds", 600)), context, clock)
    cleaner = Cleaner(cluster_name=props["ClusterName"], vpc_id=props["VpcId"], deadline=deadline,
                      session=session, poll_seconds=float(props.get("PollSeconds", 10)), clock=clock, sleep=sleep)
    report = cleaner.run()
    return {"PhysicalResourceId": physical_id, "Data": {"Summary": report.summary()[:1000]}}


def handler(event, context):  # the Lambda entry point
    LOG.info("event: %s", {k: v for k, v in event.items() if k not in ("ResponseURL",)})
    region = os.environ.get("AWS_REGION")
    return on_event(event, context, session=boto3.Session(region_name=region) if region else None)
