"""serveConfigV2 of the RayService: the serving contract between this chart and serving/app.py.

One application "vllm" at route "/", built by `serving.app:build_app(args)`. The `args` keys are the
contract (see docs/charts.md); everything in them is derived from the environment config and its
accelerator preset, so switching instance type changes the engine settings and the Serve autoscaling
together. The args and the `deployments` block both come from the serving app's one builder
(serving/deployment.py), so what this file declares is exactly what the replica's code applies.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import yaml

from config.environments import ConfigError, EnvironmentConfig
from config.names import SERVE_PORT
from config.project import CACHE_DIR
from config.secrets import API_KEYS_DIR
from config.versions import NEURON_VLLM_IMAGE
# The serving app's own names and builder (pure Python, no vLLM/Ray import): one definition for both sides.
from k8s_charts.inputs import api_key_specs
from serving.deployment import ServeRow, app_args, deployment_options, http_options
from serving.model_store import compile_key_for
from serving.settings import APP_NAME, IMPORT_PATH, ROUTE_PREFIX, ServingSettings, SettingsError

# Serve's HTTP proxy (HAProxy with RAY_SERVE_ENABLE_HA_PROXY) listens on every interface of each Ray
# pod, on the port the serve Service and the NetworkPolicies name.
SERVE_HOST = "0.0.0.0"

# The worker's local copy of the model store (docs/model-store.md), on the pod's model-cache volume
# (vllm_chart.py): the model-fetch init container writes the weights and the compiled artifacts here
# and the engine loads them from here, so `model` in the args is this directory, not the hub id.
CACHE_MOUNT = CACHE_DIR
HF_HOME = f"{CACHE_MOUNT}/huggingface"
WEIGHTS_DIR = f"{CACHE_MOUNT}/weights"
ARTIFACTS_MOUNT = f"{CACHE_MOUNT}/neuron"

# Exactly the keys serving/settings.py accepts (its dataclass is the contract's definition).
ARG_KEYS = tuple(f.name for f in fields(ServingSettings))


def compiled_artifacts_dir(compile_key: str) -> str:
    """One directory per compile key: artifacts of another model, revision, shape or SDK never load."""
    return f"{ARTIFACTS_MOUNT}/{compile_key}"


def model_compile_key(cfg: EnvironmentConfig) -> str:
    """The model store's compile key of this environment's engine (config/model_store.py): the hub id
    and commit (the args' `model` is the local copy), the Neuron image, the engine's compiled shape."""
    settings = ServingSettings.from_args(serve_args(cfg, compile_key=""))
    return compile_key_for(settings, model=cfg.model_id, revision=cfg.model_revision,
                           image=NEURON_VLLM_IMAGE, compiler_flags="")


def serve_row(cfg: EnvironmentConfig, compile_key: str | None = None) -> ServeRow:
    """This environment's row of the serving app's builder (compile_key: model_compile_key(cfg))."""
    shape = cfg.worker_shape
    p = shape.preset
    key = model_compile_key(cfg) if compile_key is None else compile_key
    return ServeRow(
        model=WEIGHTS_DIR,
        served_model_name=cfg.model.served_name,
        device="neuron",
        tensor_parallel_size=p.tensor_parallel_size,
        max_model_len=p.max_model_len,
        max_num_seqs=p.max_num_seqs,
        min_replicas=cfg.min_replicas,
        max_replicas=cfg.max_replicas,
        # Each replica gets its share of the worker pod's CPUs (tokenization, sampling, HTTP).
        num_cpus=float(shape.replica_cpus),
        compiled_artifacts_dir=compiled_artifacts_dir(key) if key else "",
        # The parser that fits the model's tokenizer and training (config/models.py): a parser that
        # cannot start on the tokenizer would crash-loop every replica.
        tool_call_parser=cfg.model.tool_call_parser,
        # The weights are a local directory (fetched at cfg.model_revision, which the compile key holds).
        revision="",
        # Every route but /health needs one of the named keys: the synced Secret mounted read-only at
        # API_KEYS_DIR (vllm_chart.py), re-read by the replica, so a rotation needs no restart; a
        # replica that finds no key there refuses to start. Each key's optional rate limit from config.
        auth="api_keys",
        api_keys_dir=API_KEYS_DIR,
        api_key_rate_limits={s.name: s.requests_per_minute for s in api_key_specs(cfg) if s.requests_per_minute},
        request_limits=cfg.limits,
    )


def serve_args(cfg: EnvironmentConfig, compile_key: str | None = None) -> dict[str, Any]:
    # The serving app's own builder and parser: what it would reject at replica start fails here,
    # before synthesis.
    try:
        return app_args(serve_row(cfg, compile_key))
    except SettingsError as exc:
        raise ConfigError(f"serving args for {cfg.name}/{cfg.worker_shape.instance_type}: {exc}") from None


def serve_config(cfg: EnvironmentConfig) -> dict[str, Any]:
    args = serve_args(cfg)
    return {
        "proxy_location": "EveryNode",
        # Explicit, from the one SERVE_PORT constant, rather than Ray's default (also 8000).
        "http_options": http_options(SERVE_HOST, SERVE_PORT),
        "applications": [{
            "name": APP_NAME,
            "route_prefix": ROUTE_PREFIX,
            "import_path": IMPORT_PATH,
            "args": args,
            # Exactly what serving/app.py's build_app applies (tests/serving/test_deployment.py).
            "deployments": [deployment_options(ServingSettings.from_args(args))],
        }],
    }


def serve_config_yaml(cfg: EnvironmentConfig) -> str:
    return yaml.safe_dump(serve_config(cfg), sort_keys=False)
