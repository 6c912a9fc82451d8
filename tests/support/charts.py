"""Charts synthesized once per session for every environment and every accelerator preset."""

from __future__ import annotations

import dataclasses
from typing import Any

import cdk8s
import pytest

from config.environments import all_environments, validate
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


@pytest.fixture(scope="session")
def synthesized() -> dict[str, tuple[Any, dict[str, list[dict]]]]:
    """{variant: (config, {file: manifests})}, plus one with an HF token and an ingress namespace."""
    out = {name: (cfg, synth(cfg)) for name, cfg in VARIANTS.items()}
    dev = VARIANTS["env-dev"]
    full = dataclasses.replace(dev, hf_token_secret_name="llama3/hf-token")
    out["dev-hf-ingress"] = (full, synth(full, ingress_namespace="ingress-nginx"))
    return out


def docs(files: dict[str, list[dict]]) -> list[dict]:
    return [d for manifests in files.values() for d in manifests]


def find(files: dict[str, list[dict]], kind: str, name: str | None = None) -> dict:
    matches = [d for d in docs(files) if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]
