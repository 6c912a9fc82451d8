"""A preset or override that cannot work is rejected before synthesis, with a message naming the field."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import ConfigError, load_config, validate
from config.node_fit import Requests, estimate, parse_cpu_m, parse_memory_mib, pod_requests
from config.presets import (
    KUBERAY_WAIT_GCS_READY_CPU, KUBERAY_WAIT_GCS_READY_MEMORY, PRESETS, SIZING_MARGIN, PresetError, largest_fit,
    resolve_preset, worker_pod_requests,
)
from tests.support.charts import find

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
        assert estimate(name).fits(worker_pod_requests(p)), name


def test_default_is_inf2_8xlarge():
    assert load_config({"env": "dev"}).preset.instance_type == "inf2.8xlarge"


def test_switching_preset_is_one_value():
    assert load_config({"env": "dev", "accelerator_preset": "inf2.48xlarge"}).preset.neuron_cores == 24


@pytest.mark.parametrize("overrides, message", [
    ({"tensor_parallel_size": 3}, r"tensor_parallel_size=3 must divide the 2 NeuronCores"),
    ({"tensor_parallel_size": 0}, r"tensor_parallel_size=0"),
    ({"worker_cpu": 32}, r"^preset_overrides.worker_cpu: worker_cpu=32 does not fit inf2.8xlarge: .*"
                         r"use at most worker_cpu=30$"),  # 31 before the node monitoring agent (issue 13)
    ({"worker_memory_gib": 128}, r"^preset_overrides.worker_memory_gib: worker_memory_gib=128 does not fit "
                                 r"inf2.8xlarge: .*use at most worker_memory_gib=114$"),
    ({"vcpus": 64}, r"preset_overrides: unknown field\(s\) \['vcpus'\]"),  # hardware is not configurable
    # block_size is no longer a field (it is max_model_len on Neuron); the context is capped by the model.
    ({"max_model_len": 16384}, r"^preset_overrides.max_model_len: max_model_len=16384 is above"),
    ({"tensorparallel": 2}, r"preset_overrides: unknown field"),
])
def test_bad_overrides_are_rejected_before_synthesis(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(_dev(preset_overrides=overrides))


def test_tp_dividing_the_cores_is_accepted_and_reaches_the_chart():
    from tests.support.charts import synth
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


# --- node sizing: every preset fits what Karpenter estimates for a new node (config/node_fit.py) -----

# The figures before issue 9 ("before" case): sized against a flat 1 vCPU / 6 GiB reserve, not Karpenter.
OLD_WORKER_SIZES = {  # instance: (worker_cpu, worker_memory_gib)
    "inf2.xlarge": (3, 10), "inf2.8xlarge": (30, 110), "inf2.24xlarge": (90, 360),
    "inf2.48xlarge": (180, 720), "trn1.2xlarge": (7, 26), "trn1.32xlarge": (120, 480),
}


def _slack(p) -> Requests:
    free, pod = estimate(p.instance_type).free, worker_pod_requests(p)
    return Requests(free.cpu_m - pod.cpu_m, free.memory_mib - pod.memory_mib)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_the_largest_round_size_that_fits_with_the_margin(name):
    p = PRESETS[name]
    slack = _slack(p)
    assert slack.cpu_m >= SIZING_MARGIN.cpu_m and slack.memory_mib >= SIZING_MARGIN.memory_mib, (name, slack)
    # One more whole vCPU / GiB would eat into the margin: the preset is not sized below what fits.
    assert slack.cpu_m - 1000 < SIZING_MARGIN.cpu_m, (name, slack)
    assert slack.memory_mib - 1024 < SIZING_MARGIN.memory_mib, (name, slack)
    # /dev/shm (memory-backed, charged to the pod) stays a quarter of the worker's memory, inside its limit.
    assert 2 <= max(2, p.worker_memory_gib // 4) < p.worker_memory_gib


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("field", ["worker_cpu", "worker_memory_gib"])
def test_an_override_one_above_the_largest_fit_fails_naming_the_field_and_the_largest_value(name, field):
    largest = dict(zip(("worker_cpu", "worker_memory_gib"), largest_fit(PRESETS[name])))[field]
    resolve_preset(name, {field: largest})  # the largest value itself is accepted
    with pytest.raises(PresetError) as err:
        resolve_preset(name, {field: largest + 1})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"preset_overrides.{field}: {field}={largest + 1} does not fit {name}: Karpenter 1.14.1")
    assert message.endswith(f"use at most {field}={largest}")


def test_the_old_presets_fail_the_new_check():
    """Before: three presets asked more memory than Karpenter would ever see on a new node (no node
    launched), and the two small ones fit with less than the margin (74m / 64m of CPU to spare)."""
    rejected, too_tight = [], []
    for name, (cpu, mem) in OLD_WORKER_SIZES.items():
        old = dataclasses.replace(PRESETS[name], worker_cpu=cpu, worker_memory_gib=mem)
        try:
            resolve_preset(name, {"worker_cpu": cpu, "worker_memory_gib": mem})
        except PresetError as exc:
            assert "preset_overrides.worker_memory_gib" in str(exc)
            rejected.append(name)
            continue
        if _slack(old).cpu_m < SIZING_MARGIN.cpu_m:
            too_tight.append(name)
    assert sorted(rejected) == ["inf2.24xlarge", "inf2.48xlarge", "trn1.32xlarge"]
    assert sorted(too_tight) == ["inf2.xlarge", "trn1.2xlarge"]


def test_a_preset_too_large_for_its_node_names_the_preset(monkeypatch):
    from config import presets
    monkeypatch.setitem(presets.PRESETS, "inf2.48xlarge",
                        dataclasses.replace(presets.PRESETS["inf2.48xlarge"], worker_memory_gib=720))
    with pytest.raises(ConfigError, match=r"^accelerator_preset: worker_memory_gib=720 does not fit inf2.48xlarge: "
                                          r".*use at most worker_memory_gib=701$"):
        load_config({"env": "dev", "accelerator_preset": "inf2.48xlarge"})


def _quantities(container) -> Requests:
    r = container.get("resources", {}).get("requests", {})
    return Requests(parse_cpu_m(r.get("cpu", "0")), int(parse_memory_mib(r.get("memory", "0Mi"))))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_synthesized_worker_pod_requests_what_the_check_assumes(synthesized, name):
    """validate_preset checks worker_pod_requests(p); the RayService must ask exactly that: its worker
    containers and init containers, plus the wait-gcs-ready init container KubeRay 1.7 injects."""
    cfg, files = synthesized[f"preset-{name}"]
    spec = find(files, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    injected = Requests(parse_cpu_m(KUBERAY_WAIT_GCS_READY_CPU), int(parse_memory_mib(KUBERAY_WAIT_GCS_READY_MEMORY)))
    actual = pod_requests([_quantities(c) for c in spec["containers"]],
                          [_quantities(c) for c in spec.get("initContainers", [])] + [injected])
    assert actual == worker_pod_requests(cfg.preset)


# --- the worker shape: the preset resolved once per environment, read by every consumer (issue 10) ----

def test_a_preset_without_a_price_cannot_be_written():
    from config.presets import AcceleratorPreset
    with pytest.raises(TypeError, match="price"):
        AcceleratorPreset("inf2.xlarge", "inf2", 1, 2, worker_cpu=2, worker_memory_gib=12, tensor_parallel_size=2)


def test_the_price_is_not_an_override():
    with pytest.raises(PresetError, match=r"preset_overrides: unknown field\(s\) \['price'\]"):
        resolve_preset("inf2.8xlarge", {"price": 0.01})


def test_environments_default_to_DEFAULT_PRESET():
    """The default is the named constant, not a second copy of its value."""
    import ast
    import inspect
    from config import environments
    from config.presets import DEFAULT_PRESET
    tree = ast.parse(inspect.getsource(environments.EnvironmentConfig))
    [default] = [n.value for n in ast.walk(tree)
                 if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", None) == "accelerator_preset"]
    assert isinstance(default, ast.Name) and default.id == "DEFAULT_PRESET"
    assert environments.EnvironmentConfig.__dataclass_fields__["accelerator_preset"].default == DEFAULT_PRESET
    assert load_config({"env": "dev"}).worker_shape.instance_type == DEFAULT_PRESET


def test_the_preset_and_the_worker_shape_are_resolved_once_for_every_consumer(monkeypatch):
    """Synthesizing the charts, the NodePools, the serve args and the pipeline's cold-start wait of one
    environment resolves its preset once and derives its worker shape once (before: on every read)."""
    from config import environments
    from k8s_charts.serve_config import serve_args
    from platform_constructs import karpenter_pools
    from tests.support.charts import synth
    from tools import cost
    calls = {"resolve_preset": 0, "derive_worker_shape": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    for name in calls:
        monkeypatch.setattr(environments, name, counted(name, getattr(environments, name)))
    cfg = load_config({"env": "prod"})
    synth(cfg)
    karpenter_pools.node_pools(cfg.worker_shape)
    serve_args(cfg)
    cfg.worker_shape.cold_start.smoke_step_timeout_minutes
    cost.hourly_price(cfg.accelerator_preset)
    assert calls == {"resolve_preset": 1, "derive_worker_shape": 1}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_consumer_uses_the_worker_shapes_figures(synthesized, name):
    import yaml
    from config.cold_start import ready_deadline_seconds
    from config.names import NEURON_RESOURCE, NODEPOOL_LABEL
    from platform_constructs import karpenter_pools
    from tools import cost
    cfg, files = synthesized[f"preset-{name}"]
    shape = cfg.worker_shape
    rs = find(files, "RayService")
    [worker] = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    spec = worker["template"]["spec"]
    [container] = spec["containers"]
    assert spec["nodeSelector"][NODEPOOL_LABEL] == shape.pool
    assert spec["nodeSelector"]["node.kubernetes.io/instance-type"] == shape.instance_type == name
    assert container["resources"]["limits"] == {
        "cpu": str(shape.cpu), "memory": f"{shape.memory_gib}Gi", NEURON_RESOURCE: str(shape.neuron_devices)}
    assert (worker["minReplicas"], worker["maxReplicas"]) == (shape.min_pods, shape.max_pods)
    assert worker["rayStartParams"]["resources"] == "'{\"neuron_cores\":%d}'" % shape.ray_neuron_cores
    [dep] = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"][0]["deployments"]
    assert dep["ray_actor_options"]["num_cpus"] == shape.replica_cpus
    assert rs["metadata"]["annotations"]["ray.io/initializing-timeout"] == shape.cold_start.initializing_timeout
    assert shape.cold_start.budget_seconds == ready_deadline_seconds(cfg.preset)
    pool = next(m for m in karpenter_pools.node_pools(cfg.worker_shape) if m["metadata"]["name"] == shape.pool)
    assert int(pool["spec"]["limits"][NEURON_RESOURCE]) == shape.neuron_devices * shape.max_nodes
    assert cost.hourly_price(name) == shape.price.usd_per_hour
    # The figures themselves: replicas_per_node replicas of tensor_parallel_size NeuronCores fill the node.
    p = shape.preset
    assert shape.replicas_per_node * p.tensor_parallel_size == shape.ray_neuron_cores == p.neuron_cores
    assert shape.replica_cpus * shape.replicas_per_node <= shape.cpu
    assert shape.max_pods * shape.replicas_per_node >= cfg.max_replicas
    serve_max = dep["autoscaling_config"]["max_replicas"] if "autoscaling_config" in dep else dep["num_replicas"]
    assert serve_max == cfg.max_replicas
