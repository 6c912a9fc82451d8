"""The client and the benchmark over https with a private CA (issue 13): local mode behind a
TLS-terminating proxy with a throwaway CA, as an application reaches the internal ALB."""

import argparse

import pytest

from tests.support.tls_proxy import tls_proxy
from tools import client
from tools.bench.__main__ import main as bench_main
from tools.endpoint import EndpointError, add_endpoint_arguments, endpoint_from_args


@pytest.fixture
def https_endpoint(local_endpoint, tmp_path):
    with tls_proxy(local_endpoint.port, tmp_path) as proxy:
        yield local_endpoint, proxy


@pytest.mark.serving
def test_client_over_https_with_the_ca_bundle(https_endpoint, monkeypatch, capsys):
    local, proxy = https_endpoint
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    argv = ["--base-url", proxy.url(), "--api-key", local.api_key or "EMPTY", "--example", "simple",
            "--max-tokens", "4"]
    assert client.main([*argv, "--ca-bundle", str(proxy.ca_file)]) == 0
    assert "Example 1 - simple chat completion" in capsys.readouterr().out
    # Without the CA the system trust store refuses the certificate, and the message says what to pass.
    assert client.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot verify the TLS certificate of {proxy.url()}: pass the PEM file")
    assert "--ca-bundle" in err
    # SSL_CERT_FILE does the same as --ca-bundle.
    monkeypatch.setenv("SSL_CERT_FILE", str(proxy.ca_file))
    assert client.main(argv) == 0


@pytest.mark.serving
def test_benchmark_over_https_with_the_ca_bundle(https_endpoint, tmp_path, monkeypatch):
    local, proxy = https_endpoint
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    args = ["--base-url", proxy.url(), "--model", local.model, "--results-dir", str(tmp_path / "bench"),
            "--concurrency", "1", "--requests-per-user", "1", "--mean-input-tokens", "32",
            "--stddev-input-tokens", "1", "--mean-output-tokens", "4", "--stddev-output-tokens", "1",
            "--timeout", "120", "--no-progress", "--ca-bundle", str(proxy.ca_file)]
    if local.api_key:
        args += ["--api-key", local.api_key]
    assert bench_main(args) == 0
    assert any((tmp_path / "bench").rglob("*summary*.json"))


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_endpoint_arguments(parser)
    return parser.parse_args(list(argv))


def test_a_missing_ca_bundle_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(EndpointError, match=r"--ca-bundle: .*nope.pem is not a file"):
        endpoint_from_args(_args("--base-url", "https://api.example/v1", "--ca-bundle", str(tmp_path / "nope.pem")))


def test_the_ca_bundle_is_kept_for_https_only(tmp_path, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert endpoint_from_args(_args("--base-url", "https://a/v1", "--ca-bundle", str(ca))).ca_bundle == str(ca)
    assert endpoint_from_args(_args("--base-url", "http://a/v1", "--ca-bundle", str(ca))).ca_bundle is None


@pytest.mark.serving
def test_smoke_check_over_https(https_endpoint, monkeypatch):
    """The smoke check (stdlib urllib, the system trust store) goes through the ALB's URL from an
    operator's machine; a private CA is given the standard way, SSL_CERT_FILE."""
    from platform_constructs.smoke_test.runtime import check

    local, proxy = https_endpoint
    monkeypatch.setenv("SSL_CERT_FILE", str(proxy.ca_file))
    # /models, then a real chat completion through TLS (its answer is the local tiny model's, not
    # checked here: the deployed model's answer check is tests/platform_constructs/test_smoke.py's).
    assert check.check_models(proxy.url(), local.api_key, local.model) == local.model
    body = check._request(f"{proxy.url()}/chat/completions", local.api_key, {
        "model": local.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    assert body["choices"][0]["message"]["content"] is not None
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(check.SmokeFailure, match="CERTIFICATE_VERIFY_FAILED"):
        check.check_models(proxy.url(), local.api_key, local.model)
