"""Open WebUI's accounts and settings as `make webui-local` runs it (issue 11, item 6), over HTTP against
the real open-webui from .venv-webui: no first-visitor admin, the bootstrapped admin signs in with the
password from its 0600 file, users cannot run code, and the API key is read from the environment on
every start. No model is needed: the endpoint is a closed port, which these calls never contact.
"""

from __future__ import annotations

import secrets
import stat

import pytest

from tests.tools.servers import LocalWebUI, webui_api

CLOSED_ENDPOINT = "http://127.0.0.1:9/v1"  # discard port: Open WebUI only stores the URL


def _call(base: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, object]:
    return webui_api(base, path, json_body=body, token=token, timeout=60)


@pytest.fixture(scope="module")
def webui(tmp_path_factory):
    server = LocalWebUI(data_dir=tmp_path_factory.mktemp("webui-auth") / "data", base_url=CLOSED_ENDPOINT,
                        api_key=f"first-{secrets.token_urlsafe(8)}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _admin_token(webui: LocalWebUI) -> str:
    status, auth = _call(webui.url, "/api/v1/auths/signin",
                         {"email": webui.admin_email, "password": webui.admin_password})
    assert status == 200, auth
    assert auth["role"] == "admin" and auth["email"] == webui.admin_email, auth
    return auth["token"]


def test_the_password_file_is_private_and_never_printed(webui):
    mode = stat.S_IMODE(webui.password_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    password = webui.admin_password
    assert len(password) >= 32 and len(password.encode()) <= 72  # bcrypt's limit
    log = webui.log.read_text()
    assert str(webui.password_file) in log, "run_local.py says where the password is"
    assert password not in log


def test_signup_is_refused_even_as_the_first_visitor(webui):
    """On the old settings the first signup on a fresh instance became the admin."""
    status, body = _call(webui.url, "/api/v1/auths/signup",
                         {"name": "Visitor", "email": "visitor@example.com", "password": "Visitor-passw0rd"})
    assert status == 403, (status, body)
    status, config = _call(webui.url, "/api/config")
    assert status == 200 and config["features"]["enable_signup"] is False, config


def test_the_bootstrapped_admin_signs_in_with_the_file_password(webui):
    token = _admin_token(webui)
    status, body = _call(webui.url, "/api/v1/auths/signin", {"email": webui.admin_email, "password": "wrong-password"})
    assert status == 400, (status, body)
    status, users = _call(webui.url, "/api/v1/users/all", token=token)
    assert status == 200, users
    assert [u["email"] for u in users["users"]] == [webui.admin_email]  # the one account: no visitor got in


def test_the_security_settings_are_the_ones_open_webui_runs_with(webui):
    token = _admin_token(webui)
    status, config = _call(webui.url, "/api/v1/auths/admin/config", token=token)
    assert status == 200, config
    assert config["ENABLE_SIGNUP"] is False and config["DEFAULT_USER_ROLE"] == "pending"
    assert config["ENABLE_API_KEYS"] is False and config["ENABLE_COMMUNITY_SHARING"] is False
    status, perms = _call(webui.url, "/api/v1/users/default/permissions", token=token)
    assert status == 200, perms
    assert perms["workspace"]["tools"] is False and perms["workspace"]["tools_import"] is False
    assert perms["features"]["direct_tool_servers"] is False


def test_a_user_the_admin_adds_cannot_create_a_tool(webui):
    """A Tool is Python the server exec()s: only the admin may create one."""
    token = _admin_token(webui)
    user = {"name": "Team Member", "email": "member@example.com", "password": f"M-{secrets.token_urlsafe(12)}",
            "role": "user"}
    status, added = _call(webui.url, "/api/v1/auths/add", user, token=token)
    assert status == 200, added
    status, auth = _call(webui.url, "/api/v1/auths/signin", {k: user[k] for k in ("email", "password")})
    assert status == 200 and auth["role"] == "user", auth
    tool = {"id": "probe", "name": "probe", "content": "import os\n", "meta": {"description": "probe"}}
    status, body = _call(webui.url, "/api/v1/tools/create", tool, token=auth["token"])
    assert status in (401, 403), (status, body)


def test_a_rotated_api_key_is_used_after_a_restart(webui):
    """ENABLE_PERSISTENT_CONFIG=false: the key comes from the environment at every start, not from the
    database the first start wrote (the old behaviour: a rotated key never reached Open WebUI)."""
    status, before = _call(webui.url, "/openai/config", token=_admin_token(webui))
    assert status == 200 and before["OPENAI_API_KEYS"] == [webui.api_key], before
    password = webui.admin_password
    webui.stop()
    webui.api_key = f"rotated-{secrets.token_urlsafe(8)}"
    webui.start()
    assert webui.admin_password == password, "the same data dir keeps its admin and password file"
    status, after = _call(webui.url, "/openai/config", token=_admin_token(webui))
    assert status == 200 and after["OPENAI_API_KEYS"] == [webui.api_key], after
    # ... and the restart did not reopen signup (Open WebUI's own post-bootstrap switch is not persisted).
    status, body = _call(webui.url, "/api/v1/auths/signup",
                         {"name": "Visitor", "email": "late@example.com", "password": "Visitor-passw0rd"})
    assert status == 403, (status, body)
