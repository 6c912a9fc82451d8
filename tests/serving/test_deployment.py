"""One set of deployment options: the serveConfigV2 the chart writes == what serving/app.py applies.

In a RayService the config file's `deployments` block wins over the code's `.options(...)`, so two
sets would leave one of them dead. Both now come from serving/deployment.py; these tests hold the
manifest to Ray Serve's own reading of the app (its schema and `deployment_to_schema`).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess

import pytest
import yaml

from config import names
from config.environments import all_environments, validate
from config.presets import PRESETS
from k8s_charts.serve_config import serve_config, serve_config_yaml
from serving.deployment import AUTOSCALING_PACE, ServeRow, app_args, deployment_options, local_cpu_row
from serving.settings import ServingSettings, local_cpu_args
from tests.serving.conftest import ROOT, SERVING_PYTHON


def _configs():
    out = {f"env-{cfg.name}": cfg for cfg in all_environments()}
    dev = out["env-dev"]
    for preset in PRESETS:
        out[f"preset-{preset}"] = validate(dataclasses.replace(dev, accelerator_preset=preset))
    return out


CONFIGS = _configs()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_manifest_deployments_are_the_builders_options(name):
    manifest = yaml.safe_load(serve_config_yaml(CONFIGS[name]))
    [app] = manifest["applications"]
    settings = ServingSettings.from_args(app["args"])
    assert app["deployments"] == [deployment_options(settings)]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_manifest_sets_the_serve_port(name):
    assert serve_config(CONFIGS[name])["http_options"] == {"host": "0.0.0.0", "port": names.SERVE_PORT}


def test_local_mode_is_a_cpu_row_of_the_same_builder():
    row = local_cpu_row("/m", "m")
    assert local_cpu_args("/m", "m") == app_args(row)
    # The same derivations as a cluster row: only the row's values differ.
    neuron = dataclasses.replace(row, device="neuron", tensor_parallel_size=2, max_model_len=4096, max_num_seqs=8,
                                 compiled_artifacts_dir="/c")
    n_args = app_args(neuron)
    assert (n_args["block_size"], n_args["neuron_cores"], n_args["max_ongoing_requests"]) == (4096, 2, 16)
    assert app_args(row)["max_ongoing_requests"] == 2 * row.max_num_seqs


def test_local_mode_autoscales_up_to_max_replicas_at_the_cpu_pace_of_the_same_derivation():
    one, two = (deployment_options(ServingSettings.from_args(local_cpu_args("/m", "m", max_replicas=n))) for n in (1, 2))
    assert one["num_replicas"] == 1 and "autoscaling_config" not in one  # a laptop's default: one replica
    auto = two["autoscaling_config"]
    assert (auto["min_replicas"], auto["initial_replicas"], auto["max_replicas"]) == (1, 1, 2)
    assert auto["target_ongoing_requests"] == local_cpu_row("/m", "m").max_num_seqs
    assert {k: auto[k] for k in AUTOSCALING_PACE["cpu"]} == AUTOSCALING_PACE["cpu"]
    # The cluster keeps its pace: a Neuron replica loads for minutes.
    neuron = deployment_options(ServingSettings.from_args(serve_config(CONFIGS["env-dev"])["applications"][0]["args"]))
    assert {k: neuron["autoscaling_config"][k] for k in ("upscale_delay_s", "downscale_delay_s")} == {
        "upscale_delay_s": 30, "downscale_delay_s": 600}
    assert "look_back_period_s" not in neuron["autoscaling_config"]


def test_builder_rejects_what_the_replica_would():
    with pytest.raises(ValueError, match="min_replicas/max_replicas"):
        app_args(ServeRow("m", "m", "cpu", 1, 2048, 16, min_replicas=3, max_replicas=1, num_cpus=1,
                          tool_call_parser=""))


_RAY_VIEW = r"""
import json, sys
from ray.serve.deployment import deployment_to_schema
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import ServeDeploySchema
from serving.app import build_app

out = {}
for name, manifest in json.load(sys.stdin).items():
    schema = ServeDeploySchema.model_validate(manifest)  # Ray accepts the whole serveConfigV2
    [app_schema] = schema.applications
    [declared] = app_schema.deployments
    applied = deployment_to_schema(build_app(app_schema.args)._bound_deployment).model_dump(mode="json")
    declared = declared.model_dump(mode="json")
    if isinstance(declared.get("autoscaling_config"), dict):  # the schema keeps the file's dict; Ray parses it into
        declared["autoscaling_config"] = AutoscalingConfig(**declared["autoscaling_config"]).model_dump(mode="json")
    out[name] = {"declared": declared, "applied": applied,
                 "port": schema.http_options.port, "host": schema.http_options.host}
print(json.dumps(out))
"""


@pytest.mark.serving
def test_ray_serve_reads_the_manifest_as_the_app_applies_it():
    """Ray 2.60's own schema parses each serveConfigV2, and the options serving.app:build_app applies
    (Ray's deployment_to_schema of the bound deployment) equal the manifest's deployments entry."""
    if not SERVING_PYTHON.exists():
        pytest.fail("local mode is not set up: run `make setup-serving` (creates .venv-serving)")
    manifests = {name: serve_config(cfg) for name, cfg in CONFIGS.items()}
    result = subprocess.run([str(SERVING_PYTHON), "-c", _RAY_VIEW], input=json.dumps(manifests), capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    views = json.loads(result.stdout.strip().splitlines()[-1])
    for name, view in views.items():
        assert view["applied"] == view["declared"], name
        assert (view["host"], view["port"]) == ("0.0.0.0", names.SERVE_PORT), name
