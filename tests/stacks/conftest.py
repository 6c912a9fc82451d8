"""A third synthesis for the platform tests: dev with a public endpoint CIDR and admin roles."""

import pytest

from tests.support.synth import synthesize

PUBLIC_CIDR = "203.0.113.0/24"
ADMIN_ROLES = ("arn:aws:iam::123456789012:role/PlatformAdmin", "arn:aws:iam::123456789012:role/path/OnCall")


@pytest.fixture(scope="session")
def synth_dev_public(tmp_path_factory):
    return synthesize(
        {"endpoint_public_cidrs": PUBLIC_CIDR, "admin_role_arns": ",".join(ADMIN_ROLES)},
        tmp_path_factory.mktemp("cdk-out-dev-public"),
    )
