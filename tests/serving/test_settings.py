"""The serving contract (serving/settings.py): pure Python, so it runs here without vLLM or Ray."""

from __future__ import annotations

import math

import pytest

from config.presets import PRESETS
from config.request_limits import derive_request_limits
from serving.settings import SettingsError, ServingSettings, local_cpu_args


def neuron_args(preset_name: str = "inf2.8xlarge", **overrides):
    preset = PRESETS[preset_name]
    args = local_cpu_args("NousResearch/Meta-Llama-3-8B-Instruct", "NousResearch/Meta-Llama-3-8B-Instruct",
                          device="neuron", tensor_parallel_size=preset.tensor_parallel_size,
                          max_model_len=preset.max_model_len, max_num_seqs=preset.max_num_seqs,
                          block_size=preset.block_size, neuron_cores=preset.tensor_parallel_size,
                          compiled_artifacts_dir="/var/cache/neuron/llama3", max_ongoing_requests=preset.max_num_seqs * 2,
                          max_queued_requests=64, min_replicas=1, max_replicas=3, num_cpus=4.0)
    args.update(overrides)
    args["request_limits"] = derive_request_limits(args["max_num_seqs"], args["max_model_len"]).to_args()
    return args


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_gives_valid_neuron_settings(preset):
    s = ServingSettings.from_args(neuron_args(preset))
    p = PRESETS[preset]
    # One KV block per sequence slot (block_size == max_model_len on Neuron).
    assert s.block_size == p.max_model_len and s.num_gpu_blocks_override == p.max_num_seqs
    assert s.num_gpu_blocks_override == math.ceil(p.max_model_len / p.block_size) * p.max_num_seqs  # the guide's formula
    options = s.engine_options()
    assert options["additional_config"]["override_neuron_config"]["tp_degree"] == p.tensor_parallel_size
    assert options["device_env"]["NEURON_COMPILED_ARTIFACTS"] == "/var/cache/neuron/llama3"
    assert options["enable_auto_tool_choice"] and options["tool_call_parser"] == "llama3_json"


def test_local_cpu_args_are_valid_and_round_trip():
    s = ServingSettings.from_args(local_cpu_args("/models/tiny", "tiny"))
    assert ServingSettings.from_args(s.to_args()) == s
    assert s.num_gpu_blocks_override is None and s.engine_options()["enforce_eager"] is True


def test_neuron_block_size_must_equal_max_model_len():
    """vllm-neuron forces block_size = max_model_len without prefix caching; a smaller one would make
    num_gpu_blocks_override count blocks of a size the engine never uses."""
    with pytest.raises(SettingsError, match=r"block_size: 32 must equal max_model_len=4096"):
        ServingSettings.from_args(neuron_args(max_model_len=4096, block_size=32))
    s = ServingSettings.from_args(neuron_args(max_model_len=2048, block_size=2048, max_num_seqs=3))
    assert s.num_gpu_blocks_override == 3


def test_no_vllm_max_n_sequences_env():
    """vLLM 0.16 (the DLC's) has no VLLM_MAX_N_SEQUENCES; the n cap is serving/request_checks.py (max_sequences)."""
    for args in (neuron_args(), local_cpu_args("/m", "m")):
        assert "VLLM_MAX_N_SEQUENCES" not in ServingSettings.from_args(args).engine_options()["device_env"]


@pytest.mark.parametrize("change,field", [
    ({"device": "gpu"}, "device"),
    ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
    ({"tensor_parallel_size": "2"}, "tensor_parallel_size"),
    ({"max_model_len": True}, "max_model_len"),
    ({"max_model_len": 8100}, "block_size"),  # block_size must follow max_model_len on neuron
    ({"neuron_cores": 4}, "neuron_cores"),  # != tensor_parallel_size
    ({"max_ongoing_requests": 2}, "max_ongoing_requests"),  # below max_num_seqs
    ({"max_queued_requests": -1}, "max_queued_requests"),  # unbounded
    ({"min_replicas": 4}, "min_replicas"),
    ({"num_cpus": 0}, "num_cpus"),
    ({"num_cpus": float("nan")}, "num_cpus"),
    ({"tool_call_parser": "hermes"}, "tool_call_parser"),
    ({"api_key_env": "not a name"}, "api_key_env"),
    ({"compiled_artifacts_dir": "relative/dir"}, "compiled_artifacts_dir"),
    ({"model": ""}, "model"),
    ({"served_model_name": " padded "}, "served_model_name"),
    ({"unexpected": 1}, "unknown key"),
])
def test_bad_neuron_args_fail_with_the_field_named(change, field):
    with pytest.raises(SettingsError, match=field):
        ServingSettings.from_args(neuron_args(**change))


@pytest.mark.parametrize("change,field", [
    ({"neuron_cores": 2}, "neuron_cores"),
    ({"tensor_parallel_size": 2}, "tensor_parallel_size"),
    ({"block_size": 24}, "block_size"),
])
def test_bad_cpu_args_fail_with_the_field_named(change, field):
    with pytest.raises(SettingsError, match=field):
        ServingSettings.from_args(local_cpu_args("/m", "m", **change))


def test_missing_keys_are_listed():
    args = local_cpu_args("/m", "m")
    del args["block_size"], args["num_cpus"]
    with pytest.raises(SettingsError, match=r"missing key\(s\) \['block_size', 'num_cpus'\]"):
        ServingSettings.from_args(args)


def test_integral_floats_from_yaml_are_accepted():
    assert ServingSettings.from_args(local_cpu_args("/m", "m", max_num_seqs=16.0)).max_num_seqs == 16


def test_cpu_replicas_share_the_cores_as_unbound_threads(monkeypatch):
    # One replica: Ray's one-thread pin unset, vLLM binds its threads itself (tests/serving/test_engine_threads.py).
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert ServingSettings.from_args(local_cpu_args("/m", "m")).engine_options()["device_env"] == {"OMP_NUM_THREADS": None}
    # On 2 cores vLLM's reserved scheduler core would leave the engine one: no core is reserved.
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert ServingSettings.from_args(local_cpu_args("/m", "m")).engine_options()["device_env"] == {
        "OMP_NUM_THREADS": None, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    # Several: each engine gets its share of the cores, unbound (vLLM's auto binding would pin all to the same cores).
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    env = ServingSettings.from_args(local_cpu_args("/m", "m", max_replicas=2)).engine_options()["device_env"]
    assert env == {"OMP_NUM_THREADS": "2", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    env = ServingSettings.from_args(local_cpu_args("/m", "m", max_replicas=2)).engine_options()["device_env"]
    assert env["OMP_NUM_THREADS"] == "1"
