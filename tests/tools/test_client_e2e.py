"""The example client's three flows and its error messages, against the real local-mode server.

The flows' answers are checked on local mode's real model (real_local_endpoint, SmolLM2-135M-Instruct):
a person must be able to read them. The error paths need no real model and use the tiny one.
"""

import re

import pytest

from tools import client
from tools.endpoint import Endpoint, EndpointError, resolve_model

pytestmark = pytest.mark.serving


def _endpoint(ep, **changes) -> Endpoint:
    fields = {"base_url": ep.base_url, "api_key": ep.api_key or "EMPTY", "model": ep.model, **changes}
    return Endpoint(**fields)


def test_simple_chat_answers_the_question(real_local_endpoint):
    text = client.simple_chat(_endpoint(real_local_endpoint).client(), real_local_endpoint.model, max_tokens=24)
    assert "Delhi" in text, text


def test_chat_completion_with_parameters_honours_max_tokens(real_local_endpoint):
    text, usage = client.chat_with_parameters(_endpoint(real_local_endpoint).client(), real_local_endpoint.model,
                                              temperature=0.9, top_p=0.95, max_tokens=12)
    assert text.strip()
    assert usage is not None and 1 <= usage.completion_tokens <= 12 and usage.prompt_tokens > 0


def test_streamed_count_yields_the_digits_in_order(real_local_endpoint):
    pieces = list(client.stream_chat(_endpoint(real_local_endpoint).client(), real_local_endpoint.model, max_tokens=60))
    assert len(pieces) > 1, "a streamed answer must arrive in more than one chunk"
    numbers = [int(n) for n in re.findall(r"\d+", "".join(pieces))]
    counted = [n for n in numbers if 1 <= n <= 10]
    # Each of 1..10 appears, first seen in counting order (a list may repeat a number, "1. 1").
    assert list(dict.fromkeys(counted)) == list(range(1, 11)), "".join(pieces)


def test_cli_prints_new_delhi_for_the_first_example(real_local_endpoint, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_BASE_URL", real_local_endpoint.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    assert client.main(["--example", "simple"]) == 0
    assert "New Delhi" in capsys.readouterr().out


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
