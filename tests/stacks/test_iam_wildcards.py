"""Every Resource "*" of every synthesized template is there for the one true reason: its actions have
no resource-level permissions (platform_constructs/nag.py NO_RESOURCE_LEVEL_ACTIONS, from the Service
Authorization Reference). Anything else must name its resources."""

from __future__ import annotations

import pytest

from platform_constructs.addons.aws_load_balancer_controller import published_policy
from platform_constructs.nag import NO_RESOURCE_LEVEL_ACTIONS
from tests.support.alb_schemas import policy_atoms

# The AWS Load Balancer Controller's published policy (issue 13), verbatim: its "*" statements are the
# vendor's (Describe calls, and create/modify calls it scopes by request/resource tag conditions).
VENDOR_ATOMS = policy_atoms(published_policy()["Statement"])

POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role")


def _statements(template):
    """(logical id, statement) of every identity policy in a template (trust policies excluded)."""
    for lid, res in template.get("Resources", {}).items():
        if res["Type"] not in POLICY_TYPES:
            continue
        props = res["Properties"]
        documents = [props["PolicyDocument"]] if "PolicyDocument" in props else []
        documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in documents:
            for statement in document["Statement"]:
                yield lid, statement


def _listed(value):
    return value if isinstance(value, list) else [value]


def star_statements(templates):
    return [(stack, lid, st) for stack, t in templates.items() for lid, st in _statements(t)
            if "*" in _listed(st.get("Resource", [])) and st.get("Effect") == "Allow" and not policy_atoms([st]) <= VENDOR_ATOMS]


@pytest.mark.parametrize("fixture", ["synth_dev", "synth_prod"])
def test_every_resource_star_is_an_action_without_resource_level_permissions(request, fixture):
    synth = request.getfixturevalue(fixture)
    stars = star_statements(synth.templates)
    assert stars, "the check sees the templates' policies"
    bad = [(stack, lid, sorted(set(_listed(st["Action"])) - NO_RESOURCE_LEVEL_ACTIONS))
           for stack, lid, st in stars if not set(_listed(st["Action"])) <= NO_RESOURCE_LEVEL_ACTIONS]
    assert bad == [], f"Resource '*' on actions that support resource-level permissions: {bad}"


def test_a_scopable_action_on_star_is_caught():
    template = {"Resources": {"P": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "s3:ListBucket"], "Resource": "*"}]}}}}}
    ((_, _, st),) = star_statements({"S": template})
    assert set(st["Action"]) - NO_RESOURCE_LEVEL_ACTIONS == {"s3:ListBucket"}


def test_no_wildcard_action_is_listed():
    assert all("*" not in a and a.count(":") == 1 for a in NO_RESOURCE_LEVEL_ACTIONS)
