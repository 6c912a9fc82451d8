"""Charts synthesized once per session for every environment and every accelerator preset."""

from __future__ import annotations

import dataclasses
from typing import Any

import cdk8s
import pytest

from config.environments import all_environments, validate
from config.exposure import WebUiOidc
from config.presets import PRESETS
from k8s_charts import ChartInputs, build_charts

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llama3-inf2-serving:src-0123456789abcdef"


def synth(cfg, **kw) -> dict[str, list[dict[str, Any]]]:
    """{chart file name: [manifests]} for one config."""
    app = cdk8s.App()
    charts = build_charts(app, ChartInputs.for_environment(cfg, kw.pop("image", IMAGE), **kw))
    return {name: chart.to_json() for name, chart in charts.in_apply_order()}


def _variants():
    """Every environment as configured, plus dev on every preset."""
    out = {f"env-{cfg.name}": cfg for cfg in all_environments()}
    dev = next(c for c in all_environments() if c.name == "dev")
    for preset in PRESETS:
        out[f"preset-{preset}"] = validate(dataclasses.replace(dev, accelerator_preset=preset))
    return out


VARIANTS = _variants()

# An IdP as config/exposure.py takes it (Cognito's endpoints: the issuer is the user pool, the three
# endpoints its domain's), and a Route 53 zone: the OIDC + DNS variant every chart test also sees.
OIDC = WebUiOidc(
    hostname="chat.dev.example.com",
    issuer="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEfGhI",
    authorization_endpoint="https://llm-dev.auth.us-east-1.amazoncognito.com/oauth2/authorize",
    token_endpoint="https://llm-dev.auth.us-east-1.amazoncognito.com/oauth2/token",
    user_info_endpoint="https://llm-dev.auth.us-east-1.amazoncognito.com/oauth2/userInfo",
    client_secret_name="llama3-inf2/dev/open-webui-oidc-client",
    admin_groups=("llm-admins",), user_groups=("llm-users",), groups_claim="cognito:groups",
)
OIDC_DNS = validate(dataclasses.replace(VARIANTS["env-dev"], webui_oidc=OIDC, dns_hosted_zone_id="Z0123456789ABCDEFGHIJ",
                                        dns_zone_name="dev.example.com", api_hostname="llm.dev.example.com"))


@pytest.fixture(scope="session")
def synthesized() -> dict[str, tuple[Any, dict[str, list[dict]]]]:
    """{variant: (config, {file: manifests})}, plus one with an HF token and an ingress namespace."""
    out = {name: (cfg, synth(cfg)) for name, cfg in VARIANTS.items()}
    dev = VARIANTS["env-dev"]
    full = dataclasses.replace(dev, hf_token_secret_name="llama3/hf-token")
    out["dev-hf-ingress"] = (full, synth(full, ingress_namespace="ingress-nginx"))
    out["dev-oidc-dns"] = (OIDC_DNS, synth(OIDC_DNS))
    return out


def docs(files: dict[str, list[dict]]) -> list[dict]:
    return [d for manifests in files.values() for d in manifests]


def find(files: dict[str, list[dict]], kind: str, name: str | None = None) -> dict:
    matches = [d for d in docs(files) if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]
