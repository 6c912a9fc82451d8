"""Secrets Manager -> Kubernetes Secrets for the API key, the Open WebUI signing key and the HF token."""

from __future__ import annotations

from constructs import Construct

from config import names
from config.secrets import (
    API_KEY_ENV, API_KEY_SECRET, HF_TOKEN_KEY, HF_TOKEN_SECRET, WEBUI_SECRET, WEBUI_SECRET_KEY,
)
from k8s_charts.external_secrets import SecretSync, cluster_secret_store, external_secret
from k8s_charts.inputs import ChartInputs
from k8s_charts.objects import PlatformChart


def secret_syncs(inputs: ChartInputs) -> list[SecretSync]:
    syncs = [
        # The same API key in both namespaces: vLLM checks it, Open WebUI sends it.
        SecretSync(names.VLLM_NAMESPACE, API_KEY_SECRET, API_KEY_ENV, inputs.api_key_secret),
        SecretSync(names.WEBUI_NAMESPACE, API_KEY_SECRET, API_KEY_ENV, inputs.api_key_secret),
        SecretSync(names.WEBUI_NAMESPACE, WEBUI_SECRET, WEBUI_SECRET_KEY, inputs.webui_secret),
    ]
    if inputs.hf_token_secret:
        syncs.append(SecretSync(names.VLLM_NAMESPACE, HF_TOKEN_SECRET, HF_TOKEN_KEY, inputs.hf_token_secret))
    return syncs


class SecretsChart(PlatformChart):
    """Needs the External Secrets Operator CRDs and the two namespaces (apply after the other charts)."""

    def __init__(self, scope: Construct, id: str, inputs: ChartInputs) -> None:
        super().__init__(scope, id)
        cluster_secret_store(self, inputs.cfg.region, [names.VLLM_NAMESPACE, names.WEBUI_NAMESPACE])
        for sync in secret_syncs(inputs):
            external_secret(self, sync)
