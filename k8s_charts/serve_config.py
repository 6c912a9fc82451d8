"""serveConfigV2 of the RayService: the serving contract between this chart and serving/app.py.

One application "vllm" at route "/", built by `serving.app:build_app(args)`. The `args` keys are the
contract (see docs/charts.md); everything in them is derived from the environment config and its
accelerator preset, so switching instance type changes the engine settings and the Serve autoscaling
together.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import fields
from typing import Any

import yaml

from config.environments import ConfigError, EnvironmentConfig
from config.presets import AcceleratorPreset
from config.secrets import API_KEY_ENV
from config.versions import NEURON_VLLM_IMAGE
# The serving app's own names (pure Python, no vLLM/Ray import): one definition for both sides.
from serving.settings import APP_NAME, DEPLOYMENT_NAME, IMPORT_PATH, ROUTE_PREFIX, ServingSettings, SettingsError

NEURON_CORES_RESOURCE = "neuron_cores"  # the Ray custom resource (not the Kubernetes one)
TOOL_CALL_PARSER = "llama3_json"

# Node-local cache of the worker (see vllm_chart.py): Hugging Face downloads and Neuron-compiled
# artifacts, so a restarted worker neither downloads nor recompiles for tens of minutes.
CACHE_MOUNT = "/var/cache/llama3-inf2"
HF_HOME = f"{CACHE_MOUNT}/huggingface"
ARTIFACTS_MOUNT = f"{CACHE_MOUNT}/neuron"

# Exactly the keys serving/settings.py accepts (its dataclass is the contract's definition).
ARG_KEYS = tuple(f.name for f in fields(ServingSettings))


def compiled_artifacts_dir(model_id: str, preset: AcceleratorPreset) -> str:
    """A directory per (model, engine shape, Neuron SDK image): artifacts of another shape or SDK are never loaded."""
    slug = re.sub(r"[^a-z0-9.]+", "-", model_id.lower()).strip("-")
    sdk = hashlib.sha256(NEURON_VLLM_IMAGE.encode()).hexdigest()[:8]
    shape = f"tp{preset.tensor_parallel_size}-len{preset.max_model_len}-seqs{preset.max_num_seqs}-bs{preset.block_size}"
    return f"{ARTIFACTS_MOUNT}/{slug}-{shape}-{sdk}"


def worker_pods(cfg: EnvironmentConfig) -> tuple[int, int]:
    """(min, max) worker pods: one pod per node hosts preset.replicas_per_node Serve replicas."""
    per_node = cfg.preset.replicas_per_node
    return math.ceil(cfg.min_replicas / per_node), math.ceil(cfg.max_replicas / per_node)


def serve_args(cfg: EnvironmentConfig) -> dict[str, Any]:
    p = cfg.preset
    # A replica is busy once it holds a full batch (max_num_seqs); allow one more batch waiting in the
    # engine, and a bounded queue in front so overload answers 503 fast instead of timing out.
    max_ongoing = 2 * p.max_num_seqs
    args = {
        "model": cfg.model_id,
        "served_model_name": cfg.model_id,
        "device": "neuron",
        "tensor_parallel_size": p.tensor_parallel_size,
        "max_model_len": p.max_model_len,
        "max_num_seqs": p.max_num_seqs,
        "block_size": p.block_size,
        "compiled_artifacts_dir": compiled_artifacts_dir(cfg.model_id, p),
        "tool_call_parser": TOOL_CALL_PARSER,
        "api_key_env": API_KEY_ENV,
        "max_ongoing_requests": max_ongoing,
        "max_queued_requests": 2 * max_ongoing * cfg.max_replicas,
        "min_replicas": cfg.min_replicas,
        "max_replicas": cfg.max_replicas,
        # Each replica gets its share of the worker pod's CPUs (tokenization, sampling, HTTP).
        "num_cpus": float(p.worker_cpu // p.replicas_per_node),
        "neuron_cores": p.tensor_parallel_size,
    }
    # The serving app's own parser: what it would reject at replica start fails here, before synthesis.
    try:
        ServingSettings.from_args(args)
    except SettingsError as exc:
        raise ConfigError(f"serving args for {cfg.name}/{p.instance_type}: {exc}") from None
    return args


def serve_config(cfg: EnvironmentConfig) -> dict[str, Any]:
    args = serve_args(cfg)
    return {
        "proxy_location": "EveryNode",
        "applications": [{
            "name": APP_NAME,
            "route_prefix": ROUTE_PREFIX,
            "import_path": IMPORT_PATH,
            "args": args,
            "deployments": [{
                "name": DEPLOYMENT_NAME,
                "max_ongoing_requests": args["max_ongoing_requests"],
                "max_queued_requests": args["max_queued_requests"],
                "autoscaling_config": {
                    "min_replicas": args["min_replicas"],
                    "initial_replicas": args["min_replicas"],
                    "max_replicas": args["max_replicas"],
                    "target_ongoing_requests": cfg.preset.max_num_seqs,
                    # A new Neuron replica takes minutes to load: scale up after a sustained rise
                    # only, and keep replicas through short lulls.
                    "upscale_delay_s": 30,
                    "downscale_delay_s": 600,
                },
                # Health: a replica that stops answering its health check for 30 s is restarted;
                # in-flight streams get 60 s to finish on scale-down or upgrade.
                "health_check_period_s": 10,
                "health_check_timeout_s": 30,
                "graceful_shutdown_timeout_s": 60,
                "ray_actor_options": {
                    "num_cpus": args["num_cpus"],
                    "resources": {NEURON_CORES_RESOURCE: args["neuron_cores"]},
                },
            }],
        }],
    }


def serve_config_yaml(cfg: EnvironmentConfig) -> str:
    return yaml.safe_dump(serve_config(cfg), sort_keys=False)
