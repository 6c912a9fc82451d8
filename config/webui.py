"""Open WebUI settings shared by the Kubernetes chart and the local browser test (one place)."""

from config.names import SERVE_PORT, SERVE_SERVICE_NAME, VLLM_NAMESPACE


def openai_base_url_in_cluster() -> str:
    return f"http://{SERVE_SERVICE_NAME}.{VLLM_NAMESPACE}.svc.cluster.local:{SERVE_PORT}/v1"


# Environment both the chart's Deployment and `make webui-local` give Open WebUI. Why each one:
#  OFFLINE_MODE: no model hub, no update checks.
#  ENABLE_OLLAMA_API/OLLAMA_BASE_URL: without an explicit URL it probes local ports at import.
#  RAG_EMBEDDING_ENGINE=openai: otherwise it downloads a sentence-transformers model at start.
COMMON_ENV = {
    "OFFLINE_MODE": "true",
    "ENABLE_OLLAMA_API": "false",
    "OLLAMA_BASE_URL": "http://127.0.0.1:9",  # discard port: never contacted with the Ollama API off
    "ENABLE_OPENAI_API": "true",
    "RAG_EMBEDDING_ENGINE": "openai",
    "ENABLE_SIGNUP": "true",
    "WEBUI_AUTH": "true",
    "ANONYMIZED_TELEMETRY": "false",
    "DO_NOT_TRACK": "true",
    "SCARF_NO_ANALYTICS": "true",
    "ENABLE_VERSION_UPDATE_CHECK": "false",
}
