"""Where the platform's secrets live: Secrets Manager names and the Kubernetes Secrets synced from them.

Values never appear in code, templates or manifests: the CDK app creates (or imports) the Secrets
Manager secrets, and the External Secrets Operator copies them into the Kubernetes Secrets below,
which the pods read through `secretKeyRef` or a mounted volume.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- API keys of the serving endpoint --------------------------------------------------------------
# Several named keys (one per consuming team or tool). Each lives in its own Secrets Manager secret,
# api_key_secret_name(cluster, name), whose value is JSON: {"current": "<key>"} or, during a
# rotation, {"current": "<new>", "previous": "<old>"}; both are accepted while both are present
# (zero-downtime rotation: docs/security.md). The consumers of the platform itself have their own.
WEBUI_KEY_NAME = "open-webui"
SMOKE_TEST_KEY_NAME = "smoke-test"
# JSON fields of a key's Secrets Manager value.
KEY_CURRENT = "current"
KEY_PREVIOUS = "previous"
# The one Kubernetes Secret (vllm namespace) holding every named key: data key = key name, value =
# that key's whole JSON value. Mounted read-only into the Ray containers at API_KEYS_DIR (a mounted
# Secret is updated in place by the kubelet, so a rotation needs no restart).
API_KEYS_SECRET = "vllm-api-keys"
API_KEYS_DIR = "/etc/vllm/api-keys"
# Plain current key of one consumer, for pods that send it (env OPENAI_API_KEY from this Secret key).
API_KEY_SECRET = "vllm-api-key"  # Open WebUI's (openai-webui namespace) and the smoke Job's (vllm)
# Local mode, and the cluster until the named-key sync lands: one key from this environment variable
# (named LOCAL_KEY_NAME), which the Ray pods read from API_KEY_SECRET.
API_KEY_ENV = "VLLM_API_KEY"
API_KEY_SECRET_KEY = API_KEY_ENV
LOCAL_KEY_NAME = "local"
HF_TOKEN_SECRET = "hf-token"  # in the vllm namespace, only when hf_token_secret_name is configured
HF_TOKEN_KEY = "HF_TOKEN"
# Open WebUI's first admin, created at its first start from this Secret (signup stays off), so no
# first visitor can make themselves admin. The e-mail is not secret (EnvironmentConfig / config/webui.py).
WEBUI_ADMIN_SECRET = "open-webui-admin"
WEBUI_ADMIN_PASSWORD_KEY = "WEBUI_ADMIN_PASSWORD"
WEBUI_SECRET = "open-webui-secret-key"  # signs Open WebUI sessions; stable across restarts/replicas
WEBUI_SECRET_KEY = "WEBUI_SECRET_KEY"

# The ClusterSecretStore pointing at AWS Secrets Manager in the environment's region.
CLUSTER_SECRET_STORE = "aws-secrets-manager"
# How often ESO re-reads Secrets Manager: a rotated key reaches the cluster within this interval.
SECRET_REFRESH_INTERVAL = "1h"


def api_key_secret_name(cluster_name: str) -> str:
    """Secrets Manager name of the generated API key (created by the inference stack)."""
    return f"{cluster_name}/vllm-api-key"


def webui_admin_secret_name(cluster_name: str) -> str:
    """Secrets Manager name of the generated Open WebUI admin password."""
    return f"{cluster_name}/open-webui-admin-password"


def webui_secret_name(cluster_name: str) -> str:
    """Secrets Manager name of the generated Open WebUI session-signing key."""
    return f"{cluster_name}/open-webui-secret-key"


@dataclass(frozen=True)
class ApiKeySpec:
    """One named API key of the endpoint. `requests_per_minute`: None = no rate limit for this key."""
    name: str
    requests_per_minute: int | None = None


# The keys every environment has: one for applications, and one for each consumer of the platform
# itself, so each can be rotated (or revoked) without touching the others.
APPS_KEY_NAME = "apps"
DEFAULT_API_KEYS = (ApiKeySpec(APPS_KEY_NAME), ApiKeySpec(WEBUI_KEY_NAME), ApiKeySpec(SMOKE_TEST_KEY_NAME))
REQUIRED_KEY_NAMES = (WEBUI_KEY_NAME, SMOKE_TEST_KEY_NAME)
KEY_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$"  # a Secret data key and a path segment

# Local mode's key when VLLM_API_KEY is not set: generated once (mode 0600) under the checkout, and
# read from there by the example client, the benchmark and `make webui-local` when they talk to
# local mode. Relative to the repository root.
LOCAL_API_KEY_FILE = ".cache/local-api-key"
