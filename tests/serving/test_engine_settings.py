"""Engine settings for Inf2/Trn1 (config/presets.py engine fields, serving/settings.py), each decided
with evidence in docs/serving.md "Engine settings for Inf2"."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import ConfigError, load_config, validate
from config.models import DEFAULT_CLUSTER_MODEL
from config.presets import (
    HBM_GIB_PER_DEVICE, PRESETS, PresetError, engine_hbm_bytes, resolve_preset, usable_hbm_bytes,
)
from k8s_charts.serve_config import serve_args
from serving.settings import ServingSettings


KV_BYTES_PER_TOKEN = DEFAULT_CLUSTER_MODEL.kv_bytes_per_token
MODEL_WEIGHT_BYTES = DEFAULT_CLUSTER_MODEL.weight_bytes


def test_kv_cache_is_128_kib_per_token_for_llama_3_8b_bf16():
    # 32 layers x 8 KV heads x 128 head dim x (K, V) x 2 bytes.
    assert KV_BYTES_PER_TOKEN == 128 * 1024


def test_hbm_model_matches_the_blueprints_measured_figure():
    """The original blueprint (TP 2, 10 seqs x 4096 on inf2.8xlarge) reports 21.3 GB of accelerator memory."""
    blueprint = dataclasses.replace(PRESETS["inf2.8xlarge"], max_model_len=4096, max_num_seqs=10)
    assert engine_hbm_bytes(blueprint) / 1e9 == pytest.approx(21.3, abs=0.2)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_uses_4096_tokens_and_fits_hbm(name):
    p = PRESETS[name]
    assert p.max_model_len == 4096  # the blueprint's measured context; 8192 only with a compile budget
    assert engine_hbm_bytes(p) <= usable_hbm_bytes(p) <= p.tensor_parallel_size * HBM_GIB_PER_DEVICE[p.family] * 2**30 / 2


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_block_size_is_max_model_len_and_blocks_one_per_sequence(name):
    p = PRESETS[name]
    assert p.block_size == p.max_model_len
    dev = load_config({"env": "dev"})
    args = serve_args(validate(dataclasses.replace(dev, accelerator_preset=name)))
    settings = ServingSettings.from_args(args)
    assert args["block_size"] == args["max_model_len"] == p.max_model_len
    options = settings.engine_options()
    assert options["num_gpu_blocks_override"] == p.max_num_seqs
    assert options["enable_chunked_prefill"] is False and options["enable_prefix_caching"] is False
    neuron = options["additional_config"]["override_neuron_config"]
    assert (neuron["batch_size"], neuron["seq_len"], neuron["max_context_length"]) == (p.max_num_seqs, p.max_model_len, p.max_model_len)
    assert neuron["context_encoding_buckets"][-1] == neuron["token_generation_buckets"][-1] == p.max_model_len


def test_block_size_is_not_an_override_any_more():
    with pytest.raises(PresetError, match=r"preset_overrides: unknown field\(s\) \['block_size'\]"):
        resolve_preset("inf2.8xlarge", {"block_size": 32})


def test_8192_tokens_fit_when_chosen_explicitly():
    p = resolve_preset("inf2.8xlarge", {"max_model_len": 8192})
    assert p.block_size == 8192 and engine_hbm_bytes(p) == MODEL_WEIGHT_BYTES + 8 * 8192 * KV_BYTES_PER_TOKEN


@pytest.mark.parametrize("overrides, message", [
    ({"max_num_seqs": 64}, r"preset_overrides.max_num_seqs: max_num_seqs=64 x max_model_len=4096 needs 47.0 GiB of HBM "
                           r".* more than the 25.6 GiB usable on tensor_parallel_size=2 NeuronCores of inf2.8xlarge; "
                           r"use at most max_num_seqs=21 at max_model_len=4096"),
    ({"max_model_len": 8192, "max_num_seqs": 32}, r"preset_overrides.max_num_seqs: .* use at most max_num_seqs=10 at max_model_len=8192"),
    ({"max_model_len": 16384}, r"preset_overrides.max_model_len: max_model_len=16384 is above NousResearch/Meta-Llama-3-8B-Instruct's 8192-token context; use at most 8192"),
])
def test_an_engine_shape_that_cannot_load_fails_before_synthesis(overrides, message):
    with pytest.raises(PresetError, match=message):
        resolve_preset("inf2.8xlarge", overrides)


def test_engine_shape_error_reaches_the_environment_config():
    with pytest.raises(ConfigError, match=r"max_num_seqs=64 x max_model_len=4096"):
        validate(dataclasses.replace(load_config({"env": "dev"}), preset_overrides={"max_num_seqs": 64}))
