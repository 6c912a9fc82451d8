"""serveConfigV2 of the RayService: the serving contract between this chart and serving/app.py.

One application "vllm" at route "/", built by `serving.app:build_app(args)`. The `args` keys are the
contract (see docs/charts.md); everything in them is derived from the environment config and its
accelerator preset, so switching instance type changes the engine settings and the Serve autoscaling
together. The args and the `deployments` block both come from the serving app's one builder
(serving/deployment.py), so what this file declares is exactly what the replica's code applies.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import fields
from typing import Any

import yaml

from config.environments import ConfigError, EnvironmentConfig
from config.names import SERVE_PORT
from config.presets import AcceleratorPreset
from config.project import CACHE_DIR
from config.secrets import API_KEYS_DIR
from config.versions import NEURON_VLLM_IMAGE
# The serving app's own names and builder (pure Python, no vLLM/Ray import): one definition for both sides.
from k8s_charts.inputs import api_key_specs
from serving.deployment import ServeRow, app_args, deployment_options, http_options
from serving.settings import APP_NAME, IMPORT_PATH, ROUTE_PREFIX, ServingSettings, SettingsError

TOOL_CALL_PARSER = "llama3_json"
# Serve's HTTP proxy (HAProxy with RAY_SERVE_ENABLE_HA_PROXY) listens on every interface of each Ray
# pod, on the port the serve Service and the NetworkPolicies name.
SERVE_HOST = "0.0.0.0"

# Node-local cache of the worker (see vllm_chart.py): Hugging Face downloads and Neuron-compiled
# artifacts, so a restarted worker neither downloads nor recompiles for tens of minutes.
CACHE_MOUNT = CACHE_DIR
HF_HOME = f"{CACHE_MOUNT}/huggingface"
ARTIFACTS_MOUNT = f"{CACHE_MOUNT}/neuron"

# Exactly the keys serving/settings.py accepts (its dataclass is the contract's definition).
ARG_KEYS = tuple(f.name for f in fields(ServingSettings))


def compiled_artifacts_dir(model_id: str, preset: AcceleratorPreset, revision: str = "") -> str:
    """A directory per (model and revision, engine shape, Neuron SDK image): artifacts of another
    model revision, shape or SDK are never loaded (NxD Inference may keep sharded weights there)."""
    slug = re.sub(r"[^a-z0-9.]+", "-", model_id.lower()).strip("-") + (f"-{revision[:8]}" if revision else "")
    sdk = hashlib.sha256(NEURON_VLLM_IMAGE.encode()).hexdigest()[:8]
    shape = f"tp{preset.tensor_parallel_size}-len{preset.max_model_len}-seqs{preset.max_num_seqs}-bs{preset.block_size}"
    return f"{ARTIFACTS_MOUNT}/{slug}-{shape}-{sdk}"


def serve_row(cfg: EnvironmentConfig) -> ServeRow:
    """This environment's row of the serving app's builder."""
    shape = cfg.worker_shape
    p = shape.preset
    return ServeRow(
        model=cfg.model_id,
        served_model_name=cfg.model_id,
        device="neuron",
        tensor_parallel_size=p.tensor_parallel_size,
        max_model_len=p.max_model_len,
        max_num_seqs=p.max_num_seqs,
        min_replicas=cfg.min_replicas,
        max_replicas=cfg.max_replicas,
        # Each replica gets its share of the worker pod's CPUs (tokenization, sampling, HTTP).
        num_cpus=float(shape.replica_cpus),
        compiled_artifacts_dir=compiled_artifacts_dir(cfg.model_id, p, cfg.model_revision),
        tool_call_parser=TOOL_CALL_PARSER,
        revision=cfg.model_revision,
        # Every route but /health needs one of the named keys: the synced Secret mounted read-only at
        # API_KEYS_DIR (vllm_chart.py), re-read by the replica, so a rotation needs no restart; a
        # replica that finds no key there refuses to start. Each key's optional rate limit from config.
        auth="api_keys",
        api_keys_dir=API_KEYS_DIR,
        api_key_rate_limits={s.name: s.requests_per_minute for s in api_key_specs(cfg) if s.requests_per_minute},
        request_limits=cfg.limits,
    )


def serve_args(cfg: EnvironmentConfig) -> dict[str, Any]:
    # The serving app's own builder and parser: what it would reject at replica start fails here,
    # before synthesis.
    try:
        return app_args(serve_row(cfg))
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
