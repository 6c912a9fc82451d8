"""The example client's three flows and its error messages, against the real local-mode server."""

import pytest

from tools import client
from tools.endpoint import Endpoint, EndpointError, resolve_model

pytestmark = pytest.mark.serving


def _endpoint(ep, **changes) -> Endpoint:
    fields = {"base_url": ep.base_url, "api_key": ep.api_key or "EMPTY", "model": ep.model, **changes}
    return Endpoint(**fields)


def test_simple_chat_completion(local_endpoint):
    text = client.simple_chat(_endpoint(local_endpoint).client(), local_endpoint.model, max_tokens=8)
    assert text.strip()


def test_chat_completion_with_parameters_honours_max_tokens(local_endpoint):
    text, usage = client.chat_with_parameters(_endpoint(local_endpoint).client(), local_endpoint.model,
                                              temperature=0.9, top_p=0.95, max_tokens=12)
    assert text.strip()
    assert usage is not None and 1 <= usage.completion_tokens <= 12 and usage.prompt_tokens > 0


def test_streaming_arrives_in_pieces(local_endpoint):
    pieces = list(client.stream_chat(_endpoint(local_endpoint).client(), local_endpoint.model, max_tokens=16))
    assert len(pieces) > 1, "a streamed answer must arrive in more than one chunk"
    assert "".join(pieces).strip()


def test_cli_runs_all_three_examples_from_openai_variables(endpoint_env, capsys):
    assert client.main(["--max-tokens", "8"]) == 0
    out = capsys.readouterr().out
    for header in ("Example 1 - simple chat completion", "Example 2 - chat completion with temperature=0.9",
                   "Example 3 - streaming chat completion"):
        assert header in out
    assert "[usage: " in out


def test_model_not_served_lists_the_served_ones(endpoint_env, capsys):
    assert client.main(["--model", "no-such-model", "--max-tokens", "4"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (f"error: --model: 'no-such-model' is not served at {endpoint_env.base_url}; "
                           f"served: ['{endpoint_env.model}']")


def test_wrong_api_key_is_explained(keyed_local_endpoint, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_BASE_URL", keyed_local_endpoint.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "not-the-key")
    assert client.main(["--max-tokens", "4"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (f"error: {keyed_local_endpoint.base_url} rejected the API key (HTTP 401); set OPENAI_API_KEY "
                           f"or --api-key to a key the endpoint accepts")
    # ... and the right key from the standard variable works.
    monkeypatch.setenv("OPENAI_API_KEY", keyed_local_endpoint.api_key)
    assert client.main(["--example", "simple", "--max-tokens", "4"]) == 0


def test_resolve_model_reports_the_weights_directory(local_endpoint):
    # vLLM reports where the weights are; the benchmark finds the tokenizer there.
    name, root = resolve_model(_endpoint(local_endpoint, model=None))
    assert name == local_endpoint.model
    assert root


def test_unserved_model_error_type(local_endpoint):
    with pytest.raises(EndpointError, match="not served"):
        resolve_model(_endpoint(local_endpoint, model="x"))
