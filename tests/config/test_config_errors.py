"""Bad configuration stops before synthesis with one line naming the field (no traceback)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.environments import ConfigError

REPO = Path(__file__).resolve().parents[2]

BAD = [
    ({"env": "staging"}, "env", "allowed: ['dev', 'prod']"),
    ({"accelerator_preset": "inf3.huge"}, "accelerator_preset", "allowed:"),
    ({"availability_zones": "us-east-1a,us-east-1b", "env": "dev", "region": "us-east-1"}, None, None),  # valid
    ({"endpoint_public_cidrs": "10.0.0.300/24"}, "endpoint_public_cidrs", "not a valid IPv4 CIDR"),
    ({"endpoint_public_cidrs": "0.0.0.0/0"}, "endpoint_public_cidrs", "internet"),
    ({"admin_role_arns": "arn:aws:iam::12345:user/bob"}, "admin_role_arns", "not an IAM role ARN"),
    ({"admin_role_arns": "Platform Admin"}, "admin_role_arns", "nor a role name like Admin"),
    ({"region": "af-south-1", "availability_zones": "af-south-1a,af-south-1b"}, "region", "no inf2"),
    ({"kubernetes_version": "1.29"}, "kubernetes_version", "allowed: ['1.33', '1.34', '1.35']"),
    ({"availability_zones": "us-east-1a"}, "availability_zones", "at least 2"),
    ({"account": "12ab"}, "account", "12-digit"),
]


@pytest.mark.parametrize("context,field,hint", [b for b in BAD if b[1]], ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD) if b[1]])
def test_bad_values_raise_config_error_naming_the_field(context, field, hint):
    from app import build_app

    with pytest.raises(ConfigError) as info:
        build_app(context=context)
    message = str(info.value)
    assert message.startswith(f"{field}:"), message
    assert hint in message, message


def test_bad_cidr_in_environment_definition(monkeypatch):
    import dataclasses

    from config import environments

    broken = dataclasses.replace(environments.ENVIRONMENTS["dev"], vpc_cidr="10.1.0.0/33")
    monkeypatch.setitem(environments.ENVIRONMENTS, "dev", broken)
    with pytest.raises(ConfigError, match=r"^vpc_cidr: .*not a valid IPv4 CIDR"):
        environments.load_config({})


def test_cli_prints_one_line_and_exits_1():
    env = dict(os.environ, CDK_CONTEXT_JSON=json.dumps({"env": "nope"}))
    result = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(("b'!!", "!!"))]
    assert lines == ["configuration error: env: unknown environment 'nope'; allowed: ['dev', 'prod']"], result.stderr
    assert "Traceback" not in result.stderr


# --- admin access lives in the environment config (issue 9, item 6) ----------------------------------

@pytest.mark.parametrize("env", ["dev", "prod"])
def test_an_environment_without_an_admin_role_fails_naming_the_field_and_the_fix(monkeypatch, env):
    import dataclasses

    from config import environments

    monkeypatch.setitem(environments.ENVIRONMENTS, env,
                        dataclasses.replace(environments.ENVIRONMENTS[env], admin_role_arns=()))
    # dev is what a hand deploy loads; every environment is what the pipeline stack builds.
    with pytest.raises(ConfigError) as info:
        environments.load_config({"env": env}) if env == "dev" else environments.all_environments()
    message = str(info.value)
    assert message.startswith("admin_role_arns:") and "\n" not in message, message
    assert f"ENVIRONMENTS[{env!r}].admin_role_arns" in message and "config/environments.py" in message, message


def test_shipped_environments_name_their_admins_in_config_not_only_as_flags():
    from config.environments import ENVIRONMENTS, all_environments

    assert all(cfg.admin_role_arns for cfg in all_environments())
    assert all(cfg.admin_role_arns == ENVIRONMENTS[cfg.name].admin_role_arns for cfg in all_environments())


def test_role_names_resolve_in_the_deploying_account_and_arns_pass_through():
    from config.environments import admin_role_arn

    assert admin_role_arn("Admin", partition="aws", account="222222222222") == "arn:aws:iam::222222222222:role/Admin"
    assert admin_role_arn("ops/Admin", partition="aws-cn", account="${AWS::AccountId}") == \
        "arn:aws-cn:iam::${AWS::AccountId}:role/ops/Admin"
    arn = "arn:aws:iam::123456789012:role/PlatformAdmin"
    assert admin_role_arn(arn, partition="aws", account="222222222222") == arn


def test_the_flag_still_overrides_the_config_for_a_hand_deploy():
    from config.environments import load_config

    arn = "arn:aws:iam::123456789012:role/OnCall"
    assert load_config({"admin_role_arns": arn}).admin_role_arns == (arn,)
    assert load_config({}).admin_role_arns == ("Admin",)
