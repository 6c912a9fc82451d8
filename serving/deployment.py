"""One builder for the Serve application: its `args` AND its deployment options, for every path.

The cluster (serveConfigV2, k8s_charts/serve_config.py) and local mode (serving/local/serve.py) both
describe the deployment with a `ServeRow` and take the args and the options from here; the
replica's code (serving/app.py) applies the same options. In a RayService the config file's
`deployments` block overrides the code's options, so two sets would leave one dead; here there is
one. Modeled on Ray Serve LLM's `LLMServer.get_deployment_options(llm_config)` (ray-project/ray
python/ray/llm/_internal/serve/core/server/llm_server.py, Ray 2.60.0), which derives a deployment's
options from the one LLMConfig that also carries the engine args.

Pure Python (no vLLM, no Ray): the charts import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from config.models import TINY_LOCAL_MODEL
from config.request_limits import RequestLimits, derive_request_limits
from serving.settings import DEPLOYMENT_NAME, ServingSettings

NEURON_CORES_RESOURCE = "neuron_cores"  # the Ray custom resource the worker pods declare
# vLLM's CPU kernels need a multiple of 16; 32 is vLLM's CPU default as well.
CPU_BLOCK_SIZE = 32

# Ray Serve replaces a replica whose check_health fails (its EngineCore died). Ray's default period
# is 10 s; the replica also exits by itself within ENGINE_WATCH_INTERVAL_S of an engine death
# (serving/app.py), so a shorter period would only add calls.
HEALTH_CHECK_PERIOD_S = 10
HEALTH_CHECK_TIMEOUT_S = 30
# Let in-flight streams finish when a replica is drained (scale-down, rolling update).
GRACEFUL_SHUTDOWN_TIMEOUT_S = 60
# A full queue answers 503 with this Retry-After (Ray Serve's backpressure_config).
BACKPRESSURE_STATUS = 503
RETRY_AFTER_S = 1
# How fast Serve follows the load, by device: what a new replica costs decides it. These are
# deployment options, not serving args, so they are keyed by the row's device rather than carried as
# row fields (new args would change every cluster's serveConfigV2).
#  neuron: a new replica loads for minutes: scale up after a sustained rise only, and keep replicas
#    through short lulls.
#  cpu (local mode, the tiny model): a replica starts in under a minute, so replicas report their
#    load every second (Ray 2.60's replicas push at metrics_interval_s, default 10 s, deprecated
#    for an environment variable they do not read yet), averaged over 10 s (default 30 s), and
#    short delays let a laptop, and tests/serving/test_scale.py, see both directions within a
#    minute or two. The downscale delay outlasts the gaps in those reports on an overloaded 2-core
#    machine (a 10 s delay once removed a replica under full load).
AUTOSCALING_PACE: dict[str, dict[str, float]] = {
    "neuron": {"upscale_delay_s": 30, "downscale_delay_s": 600},
    "cpu": {"metrics_interval_s": 1, "look_back_period_s": 10, "upscale_delay_s": 5, "downscale_delay_s": 20},
}


@dataclass(frozen=True)
class ServeRow:
    """What differs between deployments of the app: the cluster's preset rows and local mode's CPU row."""

    model: str
    served_model_name: str
    device: str  # "neuron" | "cpu"
    tensor_parallel_size: int
    max_model_len: int
    max_num_seqs: int
    min_replicas: int
    max_replicas: int
    num_cpus: float  # per replica
    # The model's parser (config/models.py): one that cannot start on its tokenizer crash-loops the replica.
    tool_call_parser: str
    compiled_artifacts_dir: str = ""
    revision: str = ""
    auth: str = "api_keys"
    api_keys_dir: str = ""
    api_key_env: str = ""
    api_key_rate_limits: Mapping[str, int] = field(default_factory=dict)
    # None: the limits derived from this row's engine shape (config/request_limits.py).
    request_limits: RequestLimits | None = None


def block_size(device: str, max_model_len: int) -> int:
    """vLLM's block_size for the device.

    neuron: exactly max_model_len. With chunked prefill and prefix caching off (NxD Inference's
    continuous batching, this app's mode), vllm-neuron's platform hook replaces block_size with
    max_model_len anyway ("Neuron requires block_size = max_model_len when blockwise KV cache is
    disabled", vllm-project/vllm-neuron vllm_neuron/platform.py check_and_update_config); passing
    it explicitly keeps our num_gpu_blocks_override (one block per sequence) consistent with it.
    """
    return max_model_len if device == "neuron" else CPU_BLOCK_SIZE


def app_args(row: ServeRow) -> dict[str, Any]:
    """The serving contract's args (serving/settings.py) for this row, checked by its parser."""
    # A replica is busy once it holds a full batch (max_num_seqs); allow one more batch waiting in
    # the engine, and a bounded queue in front so overload answers 503 fast instead of timing out.
    max_ongoing = 2 * row.max_num_seqs
    args = {
        "model": row.model,
        "served_model_name": row.served_model_name,
        "device": row.device,
        "tensor_parallel_size": row.tensor_parallel_size,
        "max_model_len": row.max_model_len,
        "max_num_seqs": row.max_num_seqs,
        "block_size": block_size(row.device, row.max_model_len),
        "compiled_artifacts_dir": row.compiled_artifacts_dir,
        "tool_call_parser": row.tool_call_parser,
        "revision": row.revision,
        "auth": row.auth,
        "api_keys_dir": row.api_keys_dir,
        "api_key_env": row.api_key_env,
        "api_key_rate_limits": dict(row.api_key_rate_limits),
        "request_limits": (row.request_limits or derive_request_limits(row.max_num_seqs, row.max_model_len)).to_args(),
        "max_ongoing_requests": max_ongoing,
        "max_queued_requests": 2 * max_ongoing * row.max_replicas,
        "min_replicas": row.min_replicas,
        "max_replicas": row.max_replicas,
        "num_cpus": float(row.num_cpus),
        "neuron_cores": row.tensor_parallel_size if row.device == "neuron" else 0,
    }
    return ServingSettings.from_args(args).to_args()


def deployment_options(settings: ServingSettings) -> dict[str, Any]:
    """Ray Serve deployment options: `serve.deployment(...).options(**them)` in the replica's code,
    and the serveConfigV2 `deployments` entry, verbatim (plain YAML-safe values)."""
    actor_options: dict[str, Any] = {"num_cpus": settings.num_cpus}
    if settings.device == "neuron":
        actor_options["resources"] = {NEURON_CORES_RESOURCE: settings.neuron_cores}
    options: dict[str, Any] = {
        "name": DEPLOYMENT_NAME,
        "max_ongoing_requests": settings.max_ongoing_requests,
        "max_queued_requests": settings.max_queued_requests,
        "backpressure_config": {"status_code": BACKPRESSURE_STATUS, "retry_after_s": RETRY_AFTER_S},
        "health_check_period_s": HEALTH_CHECK_PERIOD_S,
        "health_check_timeout_s": HEALTH_CHECK_TIMEOUT_S,
        "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_TIMEOUT_S,
        "ray_actor_options": actor_options,
    }
    if settings.min_replicas == settings.max_replicas:
        options["num_replicas"] = settings.min_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": settings.min_replicas,
            # At least one replica from the first deploy on, so the endpoint answers without
            # waiting for the first request to trigger a scale-up from zero.
            "initial_replicas": max(settings.min_replicas, 1),
            "max_replicas": settings.max_replicas,
            # A replica is busy when its engine batch is full.
            "target_ongoing_requests": settings.max_num_seqs,
            **AUTOSCALING_PACE[settings.device],
        }
    return options


def http_options(host: str, port: int) -> dict[str, Any]:
    """Serve's HTTP options (serveConfigV2 `http_options`, `serve.start(http_options=...)` locally)."""
    return {"host": host, "port": port}


# Local mode's context: enough for a chat with Open WebUI, small enough for a laptop's KV cache.
LOCAL_MAX_MODEL_LEN = 2048


def local_cpu_row(model: str, served_model_name: str, *, api_key_env: str = "",
                  api_key_rate_limits: Mapping[str, int] | None = None, max_replicas: int = 1,
                  tool_call_parser: str = TINY_LOCAL_MODEL.tool_call_parser,
                  max_position_embeddings: int = TINY_LOCAL_MODEL.max_position_embeddings) -> ServeRow:
    """Local mode and the tests: the same app on a laptop CPU, sized for 2 cores and a small model.
    The parser and the context follow the model (local mode passes its row of config/models.py; the
    defaults are the tests' tiny model's). With `api_key_env` every route but /health needs that key;
    without it auth is 'disabled'. `max_replicas` above 1 autoscales from one replica, at the CPU
    pace (AUTOSCALING_PACE)."""
    return ServeRow(model=model, served_model_name=served_model_name, device="cpu", tensor_parallel_size=1,
                    max_model_len=min(LOCAL_MAX_MODEL_LEN, max_position_embeddings), max_num_seqs=16,
                    min_replicas=1, max_replicas=max_replicas, num_cpus=0.5, tool_call_parser=tool_call_parser,
                    auth="api_keys" if api_key_env else "disabled", api_key_env=api_key_env,
                    api_key_rate_limits=dict(api_key_rate_limits or {}))
