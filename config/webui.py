"""Open WebUI settings shared by the Kubernetes chart and the local browser test (one place).

The endpoint differs: the chart gives config/names.py SERVE_URL_IN_CLUSTER, `make webui-local` local mode.
Names and defaults below are open-webui 0.12.4's (backend/open_webui/config.py and env.py, read with
os.getenv); tests/tools/test_webui_config.py checks each name still exists there.
"""

from __future__ import annotations

import re

from config.exposure import OIDC_SCOPES, WEBUI_CALLBACK_PATH, WebUiOidc
from config.project import PROJECT_SLUG

# The admin account Open WebUI creates at its first start (no users yet) from WEBUI_ADMIN_EMAIL,
# WEBUI_ADMIN_PASSWORD and WEBUI_ADMIN_NAME (open-webui 0.12.4 env.py:806-808, main.py:401-404 ->
# utils/auth.py:631 create_admin_user). The password is secret: in the cluster it comes from the
# Kubernetes Secret config/secrets.py WEBUI_ADMIN_SECRET; locally run_local.py generates one. The
# e-mail is only the login name: `.invalid` (RFC 2606) never delivers mail anywhere. Change it here
# before the first deploy; afterwards the account exists and changes are made in Open WebUI itself
# (Settings > Account), since the bootstrap only runs while the database has no users.
ADMIN_EMAIL = f"admin@{PROJECT_SLUG}.invalid"
ADMIN_NAME = "Platform Admin"
# bcrypt (Open WebUI's default hash) takes at most 72 bytes; over that no admin is created.
ADMIN_PASSWORD_MAX_BYTES = 72
# Open WebUI's own check of an e-mail (0.12.4 utils/misc.py:888 validate_email_format).
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_admin_email(email: str, field: str = "config/webui.py ADMIN_EMAIL") -> str:
    """The admin e-mail, or a ValueError naming the field: Open WebUI would not let anyone sign in."""
    if not _EMAIL.match(email or "") or email != email.strip():
        raise ValueError(f"{field}: {email!r} is not an e-mail address like admin@example.invalid; "
                         "Open WebUI's admin signs in with it")
    return email.lower()  # Open WebUI stores it lower-cased (create_admin_user)


def admin_identity_env(email: str = ADMIN_EMAIL) -> dict[str, str]:
    """The admin's non-secret bootstrap variables; the caller adds WEBUI_ADMIN_PASSWORD (its own way)."""
    return {"WEBUI_ADMIN_EMAIL": check_admin_email(email), "WEBUI_ADMIN_NAME": ADMIN_NAME}


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
#  ENABLE_MEMORIES=false: memories are stored and searched as embeddings, which the endpoint cannot make.
# Security (issue 11):
#  ENABLE_PERSISTENT_CONFIG=false: every setting comes from this environment on every start, none from
#   the database (0.12.4 models/config.py Config.get returns the env default when persistence is off).
#   Above all OPENAI_API_KEYS: persisted, a rotated key never reached a running instance. It also means
#   changes an admin makes in Admin > Settings last only until the pod restarts: change them here.
#  ENABLE_SIGNUP=false + the admin bootstrapped from WEBUI_ADMIN_* (above): no first visitor becomes
#   admin (admins run server-side Python: Functions). The first-user signup is NOT gated on
#   ENABLE_SIGNUP (0.12.4 routers/auths.py:867), so the admin must exist before anyone connects: the
#   chart refuses to start without the password, run_local.py always passes one.
#  DEFAULT_USER_ROLE=pending: an account an admin adds by mistake without a role can do nothing.
#  USER_PERMISSIONS_WORKSPACE_TOOLS_ACCESS/IMPORT=false: a Tool is Python the server exec()s
#   (0.12.4 routers/tools.py:395 -> utils/plugin.py:242); only admins may create one.
#  USER_PERMISSIONS_FEATURES_DIRECT_TOOL_SERVERS, ENABLE_DIRECT_CONNECTIONS, ENABLE_API_KEYS=false:
#   no user-added tool servers or model endpoints, no long-lived user API keys.
#  ENABLE_COMMUNITY_SHARING=false: no "share to openwebui.com" (chats leaving the platform).
# These pin Open WebUI's current defaults where they already are (DEFAULT_USER_ROLE...): an upgrade
# that changes a default must not change what users may do.
COMMON_ENV = {
    "OFFLINE_MODE": "true",
    "ENABLE_OLLAMA_API": "false",
    "OLLAMA_BASE_URL": "http://127.0.0.1:9",  # discard port: never contacted with the Ollama API off
    "ENABLE_OPENAI_API": "true",
    "RAG_EMBEDDING_ENGINE": "openai",
    "BYPASS_EMBEDDING_AND_RETRIEVAL": "true",
    "ENABLE_MEMORIES": "false",
    "WEBUI_AUTH": "true",
    "ENABLE_PERSISTENT_CONFIG": "false",
    "ENABLE_SIGNUP": "false",
    "DEFAULT_USER_ROLE": "pending",
    "USER_PERMISSIONS_WORKSPACE_TOOLS_ACCESS": "false",
    "USER_PERMISSIONS_WORKSPACE_TOOLS_IMPORT": "false",
    "USER_PERMISSIONS_FEATURES_DIRECT_TOOL_SERVERS": "false",
    "ENABLE_DIRECT_CONNECTIONS": "false",
    "ENABLE_API_KEYS": "false",
    "ENABLE_COMMUNITY_SHARING": "false",
    "ANONYMIZED_TELEMETRY": "false",
    "DO_NOT_TRACK": "true",
    "SCARF_NO_ANALYTICS": "true",
    "ENABLE_VERSION_UPDATE_CHECK": "false",
}


def oidc_env(oidc: WebUiOidc) -> dict[str, str]:
    """Open WebUI's own OIDC login (config/exposure.py says why both the ALB and Open WebUI authenticate):
    accounts come from the IdP at their first sign-in and their role from its groups at every sign-in.
    The caller adds OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET (secrets, its own way).
     ENABLE_OAUTH_SIGNUP: an IdP user gets an account at first sign-in (ENABLE_SIGNUP stays false: no
      self-service password accounts).
     ENABLE_OAUTH_ROLE_MANAGEMENT + OAUTH_ROLES_CLAIM/ALLOWED/ADMIN: the role follows the IdP's groups at
      every sign-in; a user in neither list is refused (0.12.4 utils/oauth.py get_user_role raises 403).
     ENABLE_PASSWORD_AUTH=false + ENABLE_LOGIN_FORM=false: no password sign-in at all (routers/auths.py
      signin answers 403), so the bootstrap admin's password cannot be tried through the ALB; that admin
      still exists, which keeps the first IdP user from being made admin as the only account.
     OAUTH_AUTO_REDIRECT: the login page goes straight to the IdP, whose session the ALB just opened.
     OAUTH_MERGE_ACCOUNTS_BY_EMAIL=false (its default, pinned): an IdP account never takes over an
      existing account by e-mail address.
     WEBUI_SESSION_COOKIE_SECURE/WEBUI_AUTH_COOKIE_SECURE=true: the OIDC state and the session JWT
      cookies travel over HTTPS only (the ALB's listener); SameSite stays lax, which lets the IdP's
      redirect back to the callback carry the state cookie (env.py 0.12.4 lines 777-784)."""
    return {
        "WEBUI_URL": oidc.base_url,
        "ENABLE_OAUTH": "true",
        "ENABLE_OAUTH_SIGNUP": "true",
        "OAUTH_PROVIDER_NAME": oidc.provider_name,
        "OPENID_PROVIDER_URL": oidc.discovery_url,
        "OPENID_REDIRECT_URI": oidc.base_url + WEBUI_CALLBACK_PATH,
        "OAUTH_SCOPES": OIDC_SCOPES,
        "ENABLE_OAUTH_ROLE_MANAGEMENT": "true",
        "OAUTH_ROLES_CLAIM": oidc.groups_claim,
        "OAUTH_ALLOWED_ROLES": ",".join(oidc.user_groups),
        "OAUTH_ADMIN_ROLES": ",".join(oidc.admin_groups),
        "OAUTH_AUTO_REDIRECT": "true",
        "OAUTH_MERGE_ACCOUNTS_BY_EMAIL": "false",
        "ENABLE_PASSWORD_AUTH": "false",
        "ENABLE_LOGIN_FORM": "false",
        "WEBUI_SESSION_COOKIE_SECURE": "true",
        "WEBUI_AUTH_COOKIE_SECURE": "true",
    }
