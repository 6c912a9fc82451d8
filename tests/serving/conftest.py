"""Serving tests: the real local-mode app on the tiny model, the session-wide `local_endpoint` and
`keyed_local_endpoint` fixtures of tests/support/local_server.py (registered in tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import requests

from tests.support.local_server import ROOT, SERVING_PYTHON  # noqa: F401  (re-exported for the tests)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "registry: needs PyPI (runs in CI and with SERVING_REGISTRY_TESTS=1; skipped offline otherwise)"
    )


def pytest_collection_modifyitems(config, items):
    if os.environ.get("CI") or os.environ.get("SERVING_REGISTRY_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs PyPI: set SERVING_REGISTRY_TESTS=1 (CI runs it)")
    for item in items:
        if "registry" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def http():
    with requests.Session() as session:
        yield session


def assert_serving(endpoint, http) -> None:
    """The server still answers a real generation request."""
    resp = http.post(f"{endpoint.base_url}/completions", headers=endpoint.headers, timeout=60,
                     json={"model": endpoint.model, "prompt": "Hello", "max_tokens": 2, "temperature": 0})
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"]["completion_tokens"] == 2


VLLM016_PYTHON = ROOT / ".venv-vllm016" / "bin" / "python"


@pytest.fixture(scope="session")
def vllm016_run():
    """One run of tests/serving/vllm016/driver.py in .venv-vllm016 (vLLM 0.16 imports once, ~30 s)."""
    if not VLLM016_PYTHON.exists():
        pytest.fail("the vLLM 0.16 venv is missing: run `make setup-vllm016` (creates .venv-vllm016)")
    started = time.monotonic()
    result = subprocess.run([str(VLLM016_PYTHON), "-m", "tests.serving.vllm016.driver"], capture_output=True,
                            text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["timings"]["subprocess_s"] = round(time.monotonic() - started, 1)
    print(f"vLLM 0.16 driver: {out['timings']}")
    return out
