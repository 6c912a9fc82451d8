"""The ALB settings (issue 13): each missing or malformed one stops before synthesis, naming the field."""

import dataclasses

import pytest

from config.environments import ENVIRONMENTS, ConfigError, validate
from tests.support.charts import OIDC

DEV = ENVIRONMENTS["dev"]
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-0123-0123-0123-0123456789ab"

BAD = [
    ({"alb_certificate_parameter": None}, "alb_certificate_arn", "names no certificate"),
    ({"alb_certificate_arn": "arn:aws:iam::123456789012:server-certificate/x"}, "alb_certificate_arn", "not an ACM certificate ARN"),
    ({"alb_certificate_arn": CERT.replace("us-east-1", "us-west-2")}, "alb_certificate_arn", "needs an ACM certificate of us-east-1"),
    ({"alb_certificate_parameter": "no-leading-slash"}, "alb_certificate_parameter", "not an SSM parameter name"),
    ({"alb_allowed_cidrs": ("10.0.0.300/24",)}, "alb_allowed_cidrs", "not a valid IPv4 CIDR"),
    ({"alb_allowed_cidrs": ("0.0.0.0/0",)}, "alb_allowed_cidrs", "internal ALB"),
    ({"alb_allowed_cidrs": ("10.1.2.0/24",)}, "alb_allowed_cidrs", "inside vpc_cidr"),
    ({"alb_internet_facing": True, "alb_waf_requests_per_5min": 5}, "alb_waf_requests_per_5min", "from 10"),
    ({"alb_waf_requests_per_5min": True}, "alb_waf_requests_per_5min", "integer"),
    ({"alb_enabled": False, "alb_internet_facing": True}, "alb_internet_facing", "alb_enabled=True"),
]


def test_a_new_environment_asking_for_the_alb_needs_a_certificate():
    bare = dataclasses.replace(DEV, name="staging", alb_certificate_parameter=None)
    with pytest.raises(ConfigError, match=r"^alb_certificate_arn: environment 'staging' .*ENVIRONMENTS\['staging'\]"):
        validate(bare)
    validate(dataclasses.replace(bare, alb_enabled=False))  # no ALB, no certificate needed


def test_the_certificate_is_the_arn_or_a_deploy_time_ssm_reference():
    assert validate(DEV).alb_certificate == "{{resolve:ssm:/llama3-inf2/dev/alb-certificate-arn}}"
    assert validate(dataclasses.replace(DEV, alb_certificate_arn=CERT)).alb_certificate == CERT


def test_cli_override_of_the_certificate():
    from config.environments import load_config

    assert load_config({"alb_certificate_arn": CERT}).alb_certificate == CERT
    with pytest.raises(ConfigError, match="^alb_certificate_arn:"):
        load_config({"alb_certificate_arn": "nope"})


def test_internet_facing_without_cidrs_is_open_to_all_behind_waf():
    cfg = validate(dataclasses.replace(DEV, alb_internet_facing=True))
    assert cfg.alb_inbound_cidrs == ("0.0.0.0/0",)
    assert validate(DEV).alb_inbound_cidrs == (DEV.vpc_cidr,)


# --- Open WebUI behind OIDC and DNS (issue 13 #3, #4) ---------------------------------------------------

ZONE = {"dns_hosted_zone_id": "Z0123456789ABCDEFGHIJ", "dns_zone_name": "dev.example.com"}


def _oidc(**changes):
    return dataclasses.replace(OIDC, **changes)


BAD_EXPOSURE = [
    ({"dns_hosted_zone_id": "Z0123456789ABCDEFGHIJ", "api_hostname": "llm.dev.example.com"}, "dns_hosted_zone_id/dns_zone_name", "set both"),
    ({"api_hostname": "llm.dev.example.com"}, "api_hostname", "needs dns_hosted_zone_id"),
    ({**ZONE, "dns_hosted_zone_id": "zone-1", "api_hostname": "llm.dev.example.com"}, "dns_hosted_zone_id", "not a Route 53 hosted zone id"),
    ({**ZONE, "dns_zone_name": "dev.example.com.", "api_hostname": "llm.dev.example.com"}, "dns_zone_name", "no trailing dot"),
    ({**ZONE, "api_hostname": "llm.other.example.org"}, "api_hostname", "not inside dns_zone_name"),
    ({**ZONE, "api_hostname": "LLM.dev.example.com"}, "api_hostname", "lower-case DNS host name"),
    ({**ZONE}, "dns_hosted_zone_id", "no name to write"),
    ({"alb_enabled": False, "webui_oidc": OIDC}, "webui_oidc", "alb_enabled=True"),
    ({"webui_oidc": {"issuer": "https://idp.example.com"}}, "webui_oidc", "WebUiOidc"),
    ({"webui_oidc": _oidc(hostname="chat")}, "webui_oidc.hostname", "DNS host name"),
    ({**ZONE, "webui_oidc": _oidc(hostname="chat.example.org")}, "webui_oidc.hostname", "not inside dns_zone_name"),
    ({**ZONE, "api_hostname": "chat.dev.example.com", "webui_oidc": _oidc()}, "webui_oidc.hostname", "host of its own"),
    ({"webui_oidc": _oidc(issuer="http://idp.example.com")}, "webui_oidc.issuer", "not an https URL"),
    ({"webui_oidc": _oidc(token_endpoint="")}, "webui_oidc.token_endpoint", "discovery document"),
    ({"webui_oidc": _oidc(client_secret_name="arn:aws:secretsmanager:us-east-1:123456789012:secret:x")},
     "webui_oidc.client_secret_name", "not a Secrets Manager secret name"),
    ({"webui_oidc": _oidc(admin_groups=())}, "webui_oidc.admin_groups", "no password login"),
    ({"webui_oidc": _oidc(user_groups="llm-users")}, "webui_oidc.user_groups", "tuple of group names"),
    ({"webui_oidc": _oidc(admin_groups=("a,b",))}, "webui_oidc.admin_groups", "without commas"),
    ({"webui_oidc": _oidc(groups_claim="")}, "webui_oidc.groups_claim", "claim"),
    ({"webui_oidc": _oidc(session_timeout_s=604801)}, "webui_oidc.session_timeout_s", "7 days"),
]


@pytest.mark.parametrize("changes,field,hint", BAD + BAD_EXPOSURE,
                         ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD + BAD_EXPOSURE)])
def test_bad_alb_oidc_and_dns_settings_name_the_field(changes, field, hint):
    with pytest.raises(ConfigError) as info:
        validate(dataclasses.replace(DEV, **changes))
    assert str(info.value).startswith(f"{field}:"), info.value
    assert hint in str(info.value)


def test_good_oidc_and_dns_settings_pass():
    cfg = validate(dataclasses.replace(DEV, webui_oidc=OIDC, api_hostname="llm.dev.example.com", **ZONE))
    assert cfg.alb_hostnames == ("llm.dev.example.com", "chat.dev.example.com")
    assert OIDC.callback_urls() == ("https://chat.dev.example.com/oauth2/idpresponse",
                                    "https://chat.dev.example.com/oauth/oidc/login/callback")
    # Open WebUI's host without a zone: the operator points their own DNS at the ALB.
    assert validate(dataclasses.replace(DEV, webui_oidc=OIDC)).alb_hostnames == ("chat.dev.example.com",)
