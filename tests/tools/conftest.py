"""The endpoint the tools' end-to-end tests talk to: the real local-mode server.

`tools_endpoint` is the session-wide `local_endpoint` (tests/support/local_server.py, no API key),
shared with the serving tests so one model server runs per session. `keyed_endpoint` starts a second
local-mode server with an API key, only for the tests of the wrong-key path.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from tests.support.local_server import start_local_server


@dataclass(frozen=True)
class ToolsEndpoint:
    base_url: str  # ends in /v1
    model: str
    api_key: str | None  # None: the server accepts any key


@pytest.fixture(scope="session")
def tools_endpoint(local_endpoint) -> ToolsEndpoint:
    return ToolsEndpoint(local_endpoint.base_url, local_endpoint.model, local_endpoint.api_key)


@pytest.fixture(scope="module")
def keyed_endpoint(tmp_path_factory) -> ToolsEndpoint:
    key = secrets.token_urlsafe(16)  # generated per run; never stored
    # Ray's own HTTP proxy: HAProxy binds fixed stats ports that the shared server already holds.
    server = start_local_server(api_key=key, proxy="ray", log_dir=tmp_path_factory.mktemp("keyed-local-mode"))
    try:
        yield ToolsEndpoint(server.base_url, server.model, key)
    finally:
        server.stop()


@pytest.fixture
def endpoint_env(tools_endpoint, monkeypatch) -> ToolsEndpoint:
    """The standard OPENAI_* variables pointing at the endpoint, as a user would set them."""
    monkeypatch.setenv("OPENAI_BASE_URL", tools_endpoint.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    return tools_endpoint
