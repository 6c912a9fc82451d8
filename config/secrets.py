"""Where the platform's secrets live: Secrets Manager names and the Kubernetes Secrets synced from them.

Values never appear in code, templates or manifests: the CDK app creates (or imports) the Secrets
Manager secrets, and the External Secrets Operator copies them into the Kubernetes Secrets below,
which the pods read through `secretKeyRef`.
"""

# Kubernetes Secrets (synced by External Secrets Operator) and the keys inside them.
API_KEY_SECRET = "vllm-api-key"  # in the vllm and openai-webui namespaces
API_KEY_ENV = "VLLM_API_KEY"  # env var of the Ray head/workers; also the key inside API_KEY_SECRET
HF_TOKEN_SECRET = "hf-token"  # in the vllm namespace, only when hf_token_secret_name is configured
HF_TOKEN_KEY = "HF_TOKEN"
WEBUI_SECRET = "open-webui-secret-key"  # signs Open WebUI sessions; stable across restarts/replicas
WEBUI_SECRET_KEY = "WEBUI_SECRET_KEY"

# The ClusterSecretStore pointing at AWS Secrets Manager in the environment's region.
CLUSTER_SECRET_STORE = "aws-secrets-manager"
# How often ESO re-reads Secrets Manager: a rotated key reaches the cluster within this interval.
SECRET_REFRESH_INTERVAL = "1h"


def api_key_secret_name(cluster_name: str) -> str:
    """Secrets Manager name of the generated API key (created by the inference stack)."""
    return f"{cluster_name}/vllm-api-key"


def webui_secret_name(cluster_name: str) -> str:
    """Secrets Manager name of the generated Open WebUI session-signing key."""
    return f"{cluster_name}/open-webui-secret-key"
