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
