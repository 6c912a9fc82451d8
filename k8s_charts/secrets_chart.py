"""Secrets Manager -> Kubernetes Secrets: the named API keys, the Ray auth token, Open WebUI's secrets, the HF token.

What reads which (config/secrets.py names them all):
- vllm / API_KEYS_SECRET: every named key's whole JSON value ({"current", "previous"}), one data key per
  key name; mounted read-only into the Ray pods at API_KEYS_DIR, where the serving app checks requests.
- openai-webui / API_KEY_SECRET and vllm / API_KEY_SECRET: the "current" field of Open WebUI's key and of
  the smoke test's key, the one key each of them sends.
- vllm / RAY_AUTH_SECRET: the Ray token, under the data key KubeRay 1.7 requires (RAY_AUTH_TOKEN_KEY).
- openai-webui / WEBUI_SECRET and WEBUI_ADMIN_SECRET: session signing key and the first admin's password.
- openai-webui / WEBUI_OIDC_SECRET (only with webui_oidc): the IdP client's id and secret, for the ALB's
  authenticate-oidc and Open WebUI's own OIDC login.
"""

from __future__ import annotations

from constructs import Construct

from config import names
from config.exposure import CLIENT_ID_FIELD, CLIENT_SECRET_FIELD, K8S_CLIENT_ID_KEY, K8S_CLIENT_SECRET_KEY
from config.secrets import (
    API_KEY_SECRET, API_KEY_SECRET_KEY, API_KEYS_SECRET, HF_TOKEN_KEY, HF_TOKEN_SECRET, KEY_CURRENT,
    RAY_AUTH_SECRET, RAY_AUTH_TOKEN_KEY, SMOKE_TEST_KEY_NAME, WEBUI_ADMIN_PASSWORD_KEY, WEBUI_ADMIN_SECRET,
    WEBUI_KEY_NAME, WEBUI_OIDC_SECRET, WEBUI_SECRET, WEBUI_SECRET_KEY,
)
from k8s_charts.external_secrets import SecretEntry, SecretSync, cluster_secret_store, external_secret
from k8s_charts.inputs import ChartInputs
from k8s_charts.objects import PlatformChart


def secret_syncs(inputs: ChartInputs) -> list[SecretSync]:
    keys = dict(inputs.api_key_secrets)
    syncs = [
        SecretSync(names.VLLM_NAMESPACE, API_KEYS_SECRET,
                   tuple(SecretEntry(name, sm_name) for name, sm_name in inputs.api_key_secrets)),
        # Each consumer gets only its own key's current value: rotating one key touches one consumer.
        SecretSync.single(names.WEBUI_NAMESPACE, API_KEY_SECRET, API_KEY_SECRET_KEY, keys[WEBUI_KEY_NAME], KEY_CURRENT),
        SecretSync.single(names.VLLM_NAMESPACE, API_KEY_SECRET, API_KEY_SECRET_KEY, keys[SMOKE_TEST_KEY_NAME], KEY_CURRENT),
        SecretSync.single(names.VLLM_NAMESPACE, RAY_AUTH_SECRET, RAY_AUTH_TOKEN_KEY, inputs.ray_auth_secret),
        SecretSync.single(names.WEBUI_NAMESPACE, WEBUI_SECRET, WEBUI_SECRET_KEY, inputs.webui_secret),
        SecretSync.single(names.WEBUI_NAMESPACE, WEBUI_ADMIN_SECRET, WEBUI_ADMIN_PASSWORD_KEY, inputs.webui_admin_secret),
    ]
    if inputs.hf_token_secret:
        syncs.append(SecretSync.single(names.VLLM_NAMESPACE, HF_TOKEN_SECRET, HF_TOKEN_KEY, inputs.hf_token_secret))
    if oidc := inputs.cfg.webui_oidc:
        # The IdP client's JSON secret, as the keys the controller's authenticate-oidc reads.
        syncs.append(SecretSync(names.WEBUI_NAMESPACE, WEBUI_OIDC_SECRET, (
            SecretEntry(K8S_CLIENT_ID_KEY, oidc.client_secret_name, CLIENT_ID_FIELD),
            SecretEntry(K8S_CLIENT_SECRET_KEY, oidc.client_secret_name, CLIENT_SECRET_FIELD))))
    return syncs


class SecretsChart(PlatformChart):
    """Needs the External Secrets Operator CRDs and the two namespaces (apply after the other charts)."""

    def __init__(self, scope: Construct, id: str, inputs: ChartInputs) -> None:
        super().__init__(scope, id)
        cluster_secret_store(self, inputs.cfg.region, [names.VLLM_NAMESPACE, names.WEBUI_NAMESPACE])
        for sync in secret_syncs(inputs):
            external_secret(self, sync)
