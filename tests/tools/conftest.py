"""The endpoint the tools' end-to-end tests talk to: the real local-mode server.

`tools_endpoint` is the session-wide `local_endpoint` (tests/support/local_server.py, no API key),
shared with the serving tests so one model server runs per session; `keyed_endpoint`, for the
wrong-key path, is likewise the session's `keyed_local_endpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class ToolsEndpoint:
    base_url: str  # ends in /v1
    model: str
    api_key: str | None  # None: the server accepts any key


@pytest.fixture(scope="session")
def tools_endpoint(local_endpoint) -> ToolsEndpoint:
    return ToolsEndpoint(local_endpoint.base_url, local_endpoint.model, local_endpoint.api_key)


@pytest.fixture(scope="session")
def keyed_endpoint(keyed_local_endpoint) -> ToolsEndpoint:
    return ToolsEndpoint(keyed_local_endpoint.base_url, keyed_local_endpoint.model, keyed_local_endpoint.api_key)


@pytest.fixture
def endpoint_env(tools_endpoint, monkeypatch) -> ToolsEndpoint:
    """The standard OPENAI_* variables pointing at the endpoint, as a user would set them."""
    monkeypatch.setenv("OPENAI_BASE_URL", tools_endpoint.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    return tools_endpoint
