"""A preset or override that cannot work is rejected before synthesis, with a message naming the field."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import ConfigError, load_config, validate
from config.presets import PRESETS, RESERVED_CPU, RESERVED_MEMORY_GIB

EXPECTED = {  # instance: (devices, cores, default TP) -- the table
    "inf2.xlarge": (1, 2, 2), "inf2.8xlarge": (1, 2, 2), "inf2.24xlarge": (6, 12, 4),
    "inf2.48xlarge": (12, 24, 8), "trn1.2xlarge": (1, 2, 2), "trn1.32xlarge": (16, 32, 8),
}


def _dev(**changes):
    return dataclasses.replace(load_config({"env": "dev"}), **changes)


def test_every_required_preset_exists_with_its_devices_and_cores():
    assert set(PRESETS) == set(EXPECTED)
    for name, (devices, cores, tp) in EXPECTED.items():
        p = PRESETS[name]
        assert (p.neuron_devices, p.neuron_cores, p.tensor_parallel_size) == (devices, cores, tp), name
        assert p.worker_cpu <= p.vcpus - RESERVED_CPU and p.worker_memory_gib <= p.memory_gib - RESERVED_MEMORY_GIB


def test_default_is_inf2_8xlarge():
    assert load_config({"env": "dev"}).preset.instance_type == "inf2.8xlarge"


def test_switching_preset_is_one_value():
    assert load_config({"env": "dev", "accelerator_preset": "inf2.48xlarge"}).preset.neuron_cores == 24


@pytest.mark.parametrize("overrides, message", [
    ({"tensor_parallel_size": 3}, r"tensor_parallel_size=3 must divide the 2 NeuronCores"),
    ({"tensor_parallel_size": 0}, r"tensor_parallel_size=0"),
    ({"worker_cpu": 32}, r"worker_cpu=32 does not fit inf2.8xlarge"),
    ({"worker_memory_gib": 128}, r"worker_memory_gib=128 does not fit inf2.8xlarge"),
    ({"max_model_len": 1000}, r"max_model_len=1000 must be a multiple of block_size"),
    ({"tensorparallel": 2}, r"preset_overrides: unknown field"),
])
def test_bad_overrides_are_rejected_before_synthesis(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(_dev(preset_overrides=overrides))


def test_tp_dividing_the_cores_is_accepted_and_reaches_the_chart():
    from tests.charts.conftest import synth
    import yaml
    cfg = validate(_dev(accelerator_preset="inf2.48xlarge", preset_overrides={"tensor_parallel_size": 12}))
    files = synth(cfg)
    rs = next(d for d in files["10-vllm"] if d["kind"] == "RayService")
    args = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"][0]["args"]
    assert args["tensor_parallel_size"] == 12 and args["neuron_cores"] == 12


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match=r"accelerator_preset: unknown preset 'inf3.huge'; allowed"):
        load_config({"env": "dev", "accelerator_preset": "inf3.huge"})


def test_trn1_preset_outside_trn1_regions_is_rejected():
    with pytest.raises(ConfigError, match="not offered in"):
        load_config({"env": "dev", "accelerator_preset": "trn1.2xlarge", "region": "eu-west-1",
                     "availability_zones": "eu-west-1a,eu-west-1b"})


def test_engine_shape_the_serving_app_rejects_fails_before_synthesis():
    from k8s_charts.serve_config import serve_args
    cfg = validate(_dev(preset_overrides={"max_model_len": 64}))  # valid preset, too small for NxD buckets
    with pytest.raises(ConfigError, match=r"serving args for dev/inf2.8xlarge: max_model_len: 64 is below 128"):
        serve_args(cfg)
