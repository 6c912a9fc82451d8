"""The tools' end-to-end tests talk to the real local-mode server: the session-wide `local_endpoint`
(no API key) and `keyed_local_endpoint` of tests/support/local_server.py, shared with the serving
tests so one model server of each kind runs per session."""

from __future__ import annotations

import pytest

from tests.support.local_server import LocalServer


@pytest.fixture
def endpoint_env(local_endpoint, monkeypatch) -> LocalServer:
    """The standard OPENAI_* variables pointing at the endpoint, as a user would set them."""
    monkeypatch.setenv("OPENAI_BASE_URL", local_endpoint.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    return local_endpoint
