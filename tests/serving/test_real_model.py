"""Local mode's default model, SmolLM2-135M-Instruct (a real instruct model), served end to end.

The tiny random model proves the plumbing; these prove what a person sees: the chat template and
tokenizer the model was trained with render the prompt (greedy output equals transformers' on the
same checkpoint, token for token), and a request with Open WebUI's default `tools` + `tool_choice:
"auto"` is answered with text by the model's parser instead of a crash loop or a 400.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.serving.bad_requests import WEATHER_TOOL
from tests.serving.conftest import ROOT, SERVING_PYTHON

pytestmark = pytest.mark.serving

QUESTIONS = [
    [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is the capital of India?"}],
    [{"role": "user", "content": "Name three primary colors."}],
]
MAX_TOKENS = 40


@pytest.fixture(scope="module")
def reference(real_local_endpoint):
    requests_ = [{"messages": m, "max_tokens": MAX_TOKENS, "stop_at_eos": True} for m in QUESTIONS]
    out = subprocess.run([str(SERVING_PYTHON), "-m", "tests.serving.hf_reference", "--model", real_local_endpoint.model],
                         input=json.dumps(requests_), capture_output=True, text=True, cwd=ROOT, timeout=300, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("i", range(len(QUESTIONS)))
def test_greedy_output_matches_transformers(real_local_endpoint, http, reference, i):
    resp = http.post(f"{real_local_endpoint.base_url}/chat/completions", headers=real_local_endpoint.headers,
                     timeout=120, json={"model": real_local_endpoint.model, "messages": QUESTIONS[i],
                                        "max_tokens": MAX_TOKENS, "temperature": 0})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["choices"][0]["message"]["content"] == reference[i]["text"]
    assert body["usage"]["prompt_tokens"] == reference[i]["prompt_tokens"]
    assert body["usage"]["completion_tokens"] == reference[i]["completion_tokens"]
    if i == 0:
        assert "New Delhi" in reference[i]["text"], reference[i]["text"]


def test_open_webui_default_tools_and_auto_choice_get_a_text_answer(real_local_endpoint, http):
    resp = http.post(f"{real_local_endpoint.base_url}/chat/completions", headers=real_local_endpoint.headers,
                     timeout=120, json={"model": real_local_endpoint.model, "messages": QUESTIONS[0][1:],
                                        "tools": [WEATHER_TOOL], "tool_choice": "auto", "temperature": 0,
                                        "max_tokens": 32})
    assert resp.status_code == 200, resp.text
    message = resp.json()["choices"][0]["message"]
    assert message["content"].strip() and not message.get("tool_calls")


def test_served_name_and_context_follow_the_model_row(real_local_endpoint, http):
    from config.models import DEFAULT_LOCAL_MODEL
    from serving.deployment import LOCAL_MAX_MODEL_LEN

    models = http.get(f"{real_local_endpoint.base_url}/models", timeout=30).json()["data"]
    assert [(m["id"], m["max_model_len"]) for m in models] == [
        (DEFAULT_LOCAL_MODEL.served_name, min(LOCAL_MAX_MODEL_LEN, DEFAULT_LOCAL_MODEL.max_position_embeddings))]
