"""Open WebUI behind OIDC (issue 13 #3) with the chart's settings (config/webui.py oidc_env), over HTTP
against the real open-webui from .venv-webui and a real OIDC authorization-code flow with a test IdP
(tests/support/oidc_idp.py): accounts come from the IdP, roles from its groups, and nobody signs in
with a password. (The ALB's own authenticate-oidc step in front of it is AWS's and is not emulated.)
"""

from __future__ import annotations

import secrets

import pytest
import requests

from config.exposure import WebUiOidc
from config.webui import oidc_env
from tests.support.oidc_idp import IdP
from tests.support.ports import free_port
from tests.tools.servers import PORT_RANGE, LocalWebUI, webui_api

CLOSED_ENDPOINT = "http://127.0.0.1:9/v1"  # the model endpoint is never called here
CLIENT_ID, CLIENT_SECRET = "open-webui-test", secrets.token_urlsafe(24)
ADMIN = {"sub": "u-admin", "email": "ada@example.com", "name": "Ada Admin", "groups": ["llm-admins"]}
USER = {"sub": "u-user", "email": "ulla@example.com", "name": "Ulla User", "groups": ["llm-users", "staff"]}
OUTSIDER = {"sub": "u-out", "email": "otto@example.com", "name": "Otto Outsider", "groups": ["finance"]}


@pytest.fixture(scope="module")
def idp():
    with IdP(CLIENT_ID, CLIENT_SECRET) as provider:
        yield provider


@pytest.fixture(scope="module")
def webui(idp, tmp_path_factory):
    oidc = WebUiOidc(
        hostname="chat.dev.example.com", issuer=idp.issuer,
        authorization_endpoint=idp.issuer + "/authorize", token_endpoint=idp.issuer + "/token",
        user_info_endpoint=idp.issuer + "/userinfo", client_secret_name="unused-here",
        admin_groups=("llm-admins",), user_groups=("llm-users",))
    port = free_port(PORT_RANGE)
    env = oidc_env(oidc)
    # Local differences only: this host's callback, and the test IdP's plain-HTTP endpoints. (The HTTPS-only
    # cookie settings, WEBUI_*, are dropped by run_local.py like every WEBUI_* of the caller: plain HTTP here.)
    env["OPENID_REDIRECT_URI"] = f"http://127.0.0.1:{port}/oauth/oidc/login/callback"
    env.update({"OAUTH_CLIENT_ID": CLIENT_ID, "OAUTH_CLIENT_SECRET": CLIENT_SECRET, "AUTHLIB_INSECURE_TRANSPORT": "1"})
    server = LocalWebUI(data_dir=tmp_path_factory.mktemp("webui-oidc") / "data", base_url=CLOSED_ENDPOINT,
                        api_key="unused", port=port, extra_env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _sign_in(webui: LocalWebUI, idp: IdP, user: dict) -> requests.Response:
    """A browser's SSO sign-in: Open WebUI -> the IdP's authorize -> back to Open WebUI's callback."""
    idp.user = user
    session = requests.Session()
    response = session.get(webui.url + "/oauth/oidc/login", timeout=60, allow_redirects=True)
    response.token = session.cookies.get("token")  # Open WebUI's session JWT, set by the callback
    return response


def _me(webui: LocalWebUI, token: str) -> dict:
    status, me = webui_api(webui.url, "/api/v1/auths/", token=token, timeout=60)
    assert status == 200, me
    return me


def test_the_login_page_goes_straight_to_the_idp_and_offers_no_password_form(webui):
    status, config = webui_api(webui.url, "/api/config", timeout=60)
    assert status == 200, config
    assert config["oauth"]["providers"] == {"oidc": "SSO"}, config["oauth"]
    assert config["features"]["enable_login_form"] is False and config["features"]["enable_signup"] is False
    assert config["features"].get("auth_trusted_header") in (None, False)


def test_idp_groups_decide_the_role_at_first_sign_in(webui, idp):
    admin = _sign_in(webui, idp, ADMIN)
    assert admin.token, (admin.status_code, admin.url, admin.text[:300])
    me = _me(webui, admin.token)
    assert (me["email"], me["role"], me["name"]) == (ADMIN["email"], "admin", ADMIN["name"])
    user = _sign_in(webui, idp, USER)
    assert user.token, (user.status_code, user.url)
    assert _me(webui, user.token)["role"] == "user"  # not "pending": the IdP's group is the approval


def test_someone_in_neither_group_gets_no_account(webui, idp):
    outsider = _sign_in(webui, idp, OUTSIDER)
    assert not outsider.token, "a user outside the allowed groups was signed in"
    admin = _sign_in(webui, idp, ADMIN)
    status, users = webui_api(webui.url, "/api/v1/users/all", token=admin.token, timeout=60)
    assert status == 200, users
    assert OUTSIDER["email"] not in [u["email"] for u in users["users"]]


def test_no_password_sign_in_not_even_the_bootstrap_admin(webui):
    status, body = webui_api(webui.url, "/api/v1/auths/signin",
                             json_body={"email": webui.admin_email, "password": webui.admin_password}, timeout=60)
    assert status == 403, (status, body)


def test_a_forged_callback_is_refused(webui, idp):
    """A code the IdP never issued (or a replayed one) makes no session: Open WebUI checks it with the IdP."""
    session = requests.Session()
    response = session.get(webui.url + "/oauth/oidc/login/callback?code=forged&state=forged", timeout=60)
    assert session.cookies.get("token") is None, response.status_code
