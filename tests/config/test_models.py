"""config/models.py: the settings that follow the model, and the errors for a model it does not know."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import DEFAULT_MODEL_REVISION, ConfigError, load_config, validate
from config.models import DEFAULT_CLUSTER_MODEL, KNOWN_MODELS, known_model
from k8s_charts.serve_config import serve_args

LLAMA_31 = known_model("meta-llama/Llama-3.1-8B-Instruct")
A_COMMIT = "0e9e39f249a16976918f6564b8830bc894c89659"


def test_an_unknown_model_fails_before_synthesis_naming_the_field_the_known_ones_and_the_fix():
    cfg = dataclasses.replace(load_config(), model_id="mistralai/Mistral-7B-Instruct-v0.3", model_revision=A_COMMIT)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert message.startswith("model_id: 'mistralai/Mistral-7B-Instruct-v0.3' is not a known model")
    for row in KNOWN_MODELS:
        assert (row.model_id in message) == ("neuron" in row.devices), row.model_id
    assert "config/models.py" in message and "KNOWN_MODELS" in message


def test_a_local_only_model_is_not_a_cluster_model():
    cfg = dataclasses.replace(load_config(), model_id="local/SmolLM2-135M-Instruct", model_revision=A_COMMIT)
    with pytest.raises(ConfigError, match="model_id: 'local/SmolLM2-135M-Instruct' is not a known model on 'neuron'"):
        validate(cfg)


def test_another_model_needs_its_own_revision():
    cfg = dataclasses.replace(load_config(), model_id=LLAMA_31.model_id)
    assert cfg.model_revision == DEFAULT_MODEL_REVISION
    with pytest.raises(ConfigError, match=r"^model_revision: still the commit of NousResearch/"):
        validate(cfg)


@pytest.mark.parametrize("model", [DEFAULT_CLUSTER_MODEL, LLAMA_31], ids=lambda m: m.model_id)
def test_the_charts_parser_and_served_name_follow_the_model(model):
    revision = DEFAULT_MODEL_REVISION if model is DEFAULT_CLUSTER_MODEL else A_COMMIT
    cfg = validate(dataclasses.replace(load_config(), model_id=model.model_id, model_revision=revision))
    args = serve_args(cfg)
    assert (args["tool_call_parser"], args["served_model_name"]) == (model.tool_call_parser, model.served_name)


def test_the_default_model_gets_a_parser_that_starts_on_a_tokenizer_without_python_tag():
    # Llama 3.0's tokenizer has no <|python_tag|>: llama3_json would refuse to start on vLLM 0.32+.
    assert DEFAULT_CLUSTER_MODEL.tool_call_parser == "pythonic"
    assert serve_args(load_config())["tool_call_parser"] == "pythonic"


def test_the_context_check_reads_the_models_row():
    cfg = load_config()
    short = dataclasses.replace(DEFAULT_CLUSTER_MODEL, max_position_embeddings=2048)
    from config.presets import PresetError, resolve_preset

    with pytest.raises(PresetError, match=r"max_model_len=4096 is above NousResearch/Meta-Llama-3-8B-Instruct's 2048-token"):
        resolve_preset(cfg.accelerator_preset, {"max_model_len": 4096}, short)
    resolve_preset(cfg.accelerator_preset, {"max_model_len": 4096}, DEFAULT_CLUSTER_MODEL)
