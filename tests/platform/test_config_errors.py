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
