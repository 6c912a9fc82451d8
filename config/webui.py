"""Open WebUI settings shared by the Kubernetes chart and the local browser test (one place).

The endpoint differs: the chart gives config/names.py SERVE_URL_IN_CLUSTER, `make webui-local` local mode.
"""

# Environment both the chart's Deployment and `make webui-local` give Open WebUI. Why each one:
#  OFFLINE_MODE: no model hub, no update checks.
#  ENABLE_OLLAMA_API/OLLAMA_BASE_URL: without an explicit URL it probes local ports at import.
#  RAG_EMBEDDING_ENGINE=openai: otherwise it downloads a sentence-transformers model at start.
#  BYPASS_EMBEDDING_AND_RETRIEVAL=true: no embeddings model is served anywhere here. Without it an
#   upload is chunked and sent for embedding to RAG_OPENAI_API_BASE_URL, which defaults to
#   api.openai.com (not our endpoint): offline or behind the NetworkPolicies that fails ("Cannot
#   connect to host api.openai.com:443") and the upload with it.
#   Bypassed, Open WebUI extracts the document's text and gives the whole of it to the model with the
#   question (open-webui 0.12.4 routers/retrieval.py process_file), so uploads work for documents
#   that fit the model's context (8192 tokens: a few pages); a longer one gets the endpoint's
#   context-length error. Knowledge bases stay off for users (Open WebUI's default).
#   Open WebUI stores its settings in its database on first start (ENABLE_PERSISTENT_CONFIG): an
#   instance started with an older value keeps it until an admin changes it (Admin > Settings >
#   Documents > "Bypass Embedding and Retrieval").
#  ENABLE_MEMORIES=false: memories are stored and searched as embeddings, which the endpoint cannot make.
COMMON_ENV = {
    "OFFLINE_MODE": "true",
    "ENABLE_OLLAMA_API": "false",
    "OLLAMA_BASE_URL": "http://127.0.0.1:9",  # discard port: never contacted with the Ollama API off
    "ENABLE_OPENAI_API": "true",
    "RAG_EMBEDDING_ENGINE": "openai",
    "BYPASS_EMBEDDING_AND_RETRIEVAL": "true",
    "ENABLE_MEMORIES": "false",
    "ENABLE_SIGNUP": "true",
    "WEBUI_AUTH": "true",
    "ANONYMIZED_TELEMETRY": "false",
    "DO_NOT_TRACK": "true",
    "SCARF_NO_ANALYTICS": "true",
    "ENABLE_VERSION_UPDATE_CHECK": "false",
}
