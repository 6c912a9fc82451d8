"""Accelerator presets: one row per supported Inferentia2 / Trainium instance type.

This is the single source of truth for how a vLLM worker is sized on each instance. The Karpenter
NodePools, the RayService worker group and the serving engine settings are all derived from it;
switching instance type is one config value (`accelerator_preset`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from config.models import DEFAULT_CLUSTER_MODEL, KnownModel
from config.node_fit import (
    INSTANCE_TYPES, KARPENTER_MODEL_VERSION, NodeEstimate, Requests, estimate, parse_cpu_m, parse_memory_mib,
    pod_requests,
)


# On-demand Linux price in USD per instance-hour, region us-east-1: what tools/bench prices tokens with.
# Source: AWS EC2 On-Demand pricing page (aws.amazon.com/ec2/pricing/on-demand/), figures as given in
# the project's issue 5, recorded 2026-11-26 (not re-read online from this machine). Other regions
# differ; pass --price-per-hour to the benchmark to use your own (e.g. a Savings Plan rate).
PRICES_AS_OF = "2026-11-26"
PRICES_REGION = "us-east-1"
PRICES_SOURCE = "AWS EC2 On-Demand pricing (Linux), https://aws.amazon.com/ec2/pricing/on-demand/"


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    region: str = PRICES_REGION
    as_of: str = PRICES_AS_OF
    source: str = PRICES_SOURCE


@dataclass(frozen=True)
class AcceleratorPreset:
    instance_type: str
    family: str  # "inf2" or "trn1": selects the Karpenter NodePool
    neuron_devices: int  # aws.amazon.com/neuron devices on the instance
    neuron_cores: int  # NeuronCores on the instance (2 per device on inf2 and trn1)
    # What the Ray worker container asks for (requests = limits). It must fit what Karpenter estimates
    # a new node of the type can hold after kube-reserved, the eviction threshold and the DaemonSets
    # (config/node_fit.py); every preset below is sized to that with SIZING_MARGIN to spare.
    worker_cpu: int
    worker_memory_gib: int
    tensor_parallel_size: int
    # Engine shape (decided in docs/serving.md "Engine settings for Inf2"; serving/settings.py checks
    # the same at replica start). 4096 tokens: the original blueprint's measured context on inf2
    # (with it, a replica loaded and compiled in 10 min 40 s on inf2.8xlarge); 8192 fits HBM too
    # (check_engine_fit) but adds a context-encoding bucket to every cold compile.
    max_model_len: int = 4096
    max_num_seqs: int = 8
    # Required, so a preset without a price cannot be written (keyword-only: it follows the defaults).
    price: Price = field(kw_only=True)

    @property
    def vcpus(self) -> int:
        """The instance's vCPUs (config/node_fit.py INSTANCE_TYPES, the one table of instance facts)."""
        return INSTANCE_TYPES[self.instance_type].vcpus

    @property
    def memory_gib(self) -> int:
        """The instance's nominal memory in GiB (config/node_fit.py INSTANCE_TYPES)."""
        return INSTANCE_TYPES[self.instance_type].memory_mib // 1024

    @property
    def block_size(self) -> int:
        """vLLM's block_size on Neuron: always max_model_len (one KV block per sequence without
        chunked prefill or prefix caching; serving/deployment.py block_size), so not a field."""
        return self.max_model_len

    @property
    def cores_per_device(self) -> int:
        return self.neuron_cores // self.neuron_devices

    @property
    def replicas_per_node(self) -> int:
        """vLLM replicas (Ray Serve replicas) one worker pod on this instance hosts."""
        return self.neuron_cores // self.tensor_parallel_size


# inf2: 1 Inferentia2 device = 2 NeuronCores, 32 GiB HBM. trn1: 1 Trainium device = 2 NeuronCores.
# Llama-3-8B has 32 attention heads / 8 KV heads: TP 2, 8 or 32 split them evenly.
# worker_cpu / worker_memory_gib: the largest whole vCPU / GiB that leave SIZING_MARGIN free in Karpenter's
# estimate (config/node_fit.py; tests/config/test_presets.py checks both "fits" and "largest"):
#   type           allocatable (Karpenter)   - DaemonSets    = free for the worker   -> worker
#   inf2.xlarge       3920m /  14162Mi      846m / 657Mi     3074m /  13505Mi       2 /  12 GiB
#   inf2.8xlarge     31850m / 118312Mi                      31004m / 117655Mi      30 / 113 GiB
#   inf2.24xlarge    95690m / 355262Mi                      94844m / 354605Mi      94 / 345 GiB
#   inf2.48xlarge   191450m / 718987Mi                     190604m / 718330Mi     190 / 700 GiB
#   trn1.2xlarge      7910m /  29317Mi                       7064m /  28660Mi       6 /  26 GiB
#   trn1.32xlarge   127610m / 481894Mi                     126764m / 481237Mi     126 / 468 GiB
# The small types lose a whole vCPU to kube-reserved (80m) plus the DaemonSets (846m): 3 of 4 vCPU on
# inf2.xlarge would leave 74m, less than the margin.
PRESETS: dict[str, AcceleratorPreset] = {
    p.instance_type: p
    for p in (
        AcceleratorPreset("inf2.xlarge", "inf2", 1, 2, worker_cpu=2, worker_memory_gib=12,
                          tensor_parallel_size=2, max_model_len=4096, max_num_seqs=4, price=Price(0.758)),
        AcceleratorPreset("inf2.8xlarge", "inf2", 1, 2, worker_cpu=30, worker_memory_gib=113,
                          tensor_parallel_size=2, price=Price(1.97)),
        AcceleratorPreset("inf2.24xlarge", "inf2", 6, 12, worker_cpu=94, worker_memory_gib=345,
                          tensor_parallel_size=4, price=Price(6.49)),
        AcceleratorPreset("inf2.48xlarge", "inf2", 12, 24, worker_cpu=190, worker_memory_gib=700,
                          tensor_parallel_size=8, price=Price(12.981)),
        AcceleratorPreset("trn1.2xlarge", "trn1", 1, 2, worker_cpu=6, worker_memory_gib=26,
                          tensor_parallel_size=2, price=Price(1.34)),
        AcceleratorPreset("trn1.32xlarge", "trn1", 16, 32, worker_cpu=126, worker_memory_gib=468,
                          tensor_parallel_size=8, price=Price(21.50)),
    )
}
# What an environment runs unless it names another preset (config/environments.py).
DEFAULT_PRESET = "inf2.8xlarge"

# Room the presets leave in Karpenter's estimate beyond the worker pod: a DaemonSet a little larger after
# an add-on update, or one more small agent, must not stop nodes from launching.
SIZING_MARGIN = Requests(cpu_m=100, memory_mib=1024)

# The worker pod's init containers (their requests count as max(largest init, sum of containers)): only
# the one KubeRay 1.7 injects, wait-gcs-ready, with fixed requests = limits 200m / 256Mi (ray-project/kuberay
# v1.7.0 ray-operator/controllers/ray/common/pod.go, the `wait-gcs-ready` initContainer). The chart adds
# none of its own since the worker's cache became an emptyDir (k8s_charts/vllm_chart.py).
KUBERAY_WAIT_GCS_READY_CPU = "200m"
KUBERAY_WAIT_GCS_READY_MEMORY = "256Mi"


def _requests(cpu: str, memory: str) -> Requests:
    return Requests(parse_cpu_m(cpu), int(parse_memory_mib(memory)))


def worker_pod_requests(p: "AcceleratorPreset") -> Requests:
    """The worker pod's effective requests, as Kubernetes and Karpenter count them."""
    container = Requests(p.worker_cpu * 1000, p.worker_memory_gib * 1024)
    inits = [_requests(KUBERAY_WAIT_GCS_READY_CPU, KUBERAY_WAIT_GCS_READY_MEMORY)]
    return pod_requests([container], inits)


def largest_fit(p: "AcceleratorPreset", node: NodeEstimate | None = None) -> tuple[int, int]:
    """The largest worker_cpu and the largest worker_memory_gib Karpenter would still launch a node of
    the preset's type for (CPU and memory are checked independently); 0 if none."""
    node = node or estimate(p.instance_type)
    cpu = next((c for c in range(p.vcpus, 0, -1)
                if node.fits(worker_pod_requests(replace(p, worker_cpu=c, worker_memory_gib=1)))), 0)
    mem = next((m for m in range(p.memory_gib, 0, -1)
                if node.fits(worker_pod_requests(replace(p, worker_cpu=1, worker_memory_gib=m)))), 0)
    return cpu, mem


class PresetError(ValueError):
    pass


# --- engine shape: what the model needs on the NeuronCores of one replica ----------------------------
# The model's weights and KV bytes per token come from its row in config/models.py (Llama-3-8B, bf16:
# 8,030,261,248 parameters x 2 bytes, and 32 layers x 8 KV heads x 128 head dim x 2 (K, V) x 2 bytes =
# 128 KiB per token). NxD Inference (continuous batching, no block KV layout) reserves KV for all
# max_num_seqs slots at full max_model_len. Cross-check with the original blueprint (awslabs/data-on-eks
# gen-ai/inference/vllm-rayserve-inf2/vllm-rayserve-deployment.yaml @e0b6a0bd, TP 2, 10 seqs x 4096):
# 16.06 GB + 5.37 GB = 21.4 GB, where it reports "21.3GB Accelerator memory".
# HBM: 32 GiB per Inferentia2 device and per Trainium (trn1) device, shared by its 2 NeuronCores.
HBM_GIB_PER_DEVICE = {"inf2": 32, "trn1": 32}
# Kept free for the Neuron runtime, scratchpad, the loaded NEFFs and sampling buffers. Our margin, not
# a Neuron figure: the blueprint's 21.3 of 32 GiB ran, so a 20% reserve stays inside measured ground.
HBM_RESERVE_FRACTION = 0.2


def engine_hbm_bytes(p: AcceleratorPreset, model: KnownModel = DEFAULT_CLUSTER_MODEL) -> int:
    """Weights + KV cache of one replica (over its tensor_parallel_size NeuronCores)."""
    return model.weight_bytes + p.max_num_seqs * p.max_model_len * model.kv_bytes_per_token


def usable_hbm_bytes(p: AcceleratorPreset) -> int:
    per_core = HBM_GIB_PER_DEVICE[p.family] * 2**30 // p.cores_per_device
    return int(p.tensor_parallel_size * per_core * (1 - HBM_RESERVE_FRACTION))


def check_engine_fit(p: AcceleratorPreset, field: str, overridden: frozenset[str] = frozenset(),
                     model: KnownModel = DEFAULT_CLUSTER_MODEL) -> None:
    """max_model_len within the model's context (vllm-neuron skips vLLM's own check: its platform
    replaces ModelConfig.get_and_verify_max_len), and weights + KV cache within the replica's HBM."""
    def name(attr: str) -> str:
        return f"preset_overrides.{attr}" if attr in overridden else field

    context = model.max_position_embeddings
    if p.max_model_len > context:
        raise PresetError(
            f"{name('max_model_len')}: max_model_len={p.max_model_len} is above {model.model_id}'s "
            f"{context}-token context; use at most {context}")
    need, have = engine_hbm_bytes(p, model), usable_hbm_bytes(p)
    if need > have:
        max_seqs = (have - model.weight_bytes) // (p.max_model_len * model.kv_bytes_per_token)
        attr = "max_model_len" if "max_model_len" in overridden and "max_num_seqs" not in overridden else "max_num_seqs"
        hint = (f"use at most max_num_seqs={max_seqs} at max_model_len={p.max_model_len}" if max_seqs >= 1
                else f"use a larger tensor_parallel_size than {p.tensor_parallel_size}")
        raise PresetError(
            f"{name(attr)}: max_num_seqs={p.max_num_seqs} x max_model_len={p.max_model_len} needs "
            f"{need / 2**30:.1f} GiB of HBM (weights {model.weight_bytes / 2**30:.1f} + KV cache at "
            f"{model.kv_bytes_per_token // 1024} KiB/token), "
            f"more than the {have / 2**30:.1f} GiB usable on tensor_parallel_size={p.tensor_parallel_size} "
            f"NeuronCores of {p.instance_type}; {hint}")


def _check_node_fit(p: AcceleratorPreset, field: str, overridden: frozenset[str]) -> None:
    """The worker pod must fit Karpenter's estimate of a new node (config/node_fit.py), or Karpenter never
    launches one. The error names the override if the size came from one, else the preset."""
    node = estimate(p.instance_type)
    pod = worker_pod_requests(p)
    if node.fits(pod):
        return
    max_cpu, max_mem = largest_fit(p, node)
    alloc, ds, free = node.allocatable, node.daemonset_overhead, node.free
    karpenter = f"Karpenter {KARPENTER_MODEL_VERSION} leaves"
    daemonsets = f"for {len(node.daemonsets)} DaemonSets"
    if pod.cpu_m > free.cpu_m:
        name = "preset_overrides.worker_cpu" if "worker_cpu" in overridden else field
        raise PresetError(
            f"{name}: worker_cpu={p.worker_cpu} does not fit {p.instance_type}: {karpenter} {free.cpu_m}m CPU for "
            f"the worker pod on a new node ({alloc.cpu_m}m allocatable - {ds.cpu_m}m {daemonsets}); "
            f"use at most worker_cpu={max_cpu}")
    if pod.memory_mib > free.memory_mib:
        name = "preset_overrides.worker_memory_gib" if "worker_memory_gib" in overridden else field
        raise PresetError(
            f"{name}: worker_memory_gib={p.worker_memory_gib} does not fit {p.instance_type}: {karpenter} "
            f"{free.memory_mib}Mi for the worker pod on a new node ({alloc.memory_mib}Mi allocatable - "
            f"{ds.memory_mib}Mi {daemonsets}); use at most worker_memory_gib={max_mem}")
    raise PresetError(f"{field}: {p.instance_type} has {node.pods} pod slots in Karpenter's estimate, fewer "
                      f"than its {len(node.daemonsets)} DaemonSets plus the worker")


def validate_preset(p: AcceleratorPreset, field: str = "accelerator_preset",
                    overridden: frozenset[str] = frozenset(),
                    model: KnownModel = DEFAULT_CLUSTER_MODEL) -> AcceleratorPreset:
    """Reject a preset (or an override of one) that cannot work, before anything is synthesized.
    `overridden`: the preset_overrides keys, so an error names the override that caused it."""
    if p.tensor_parallel_size < 1 or p.neuron_cores % p.tensor_parallel_size:
        raise PresetError(
            f"{field}: tensor_parallel_size={p.tensor_parallel_size} must divide the {p.neuron_cores} "
            f"NeuronCores of {p.instance_type}; allowed: "
            f"{[d for d in range(1, p.neuron_cores + 1) if p.neuron_cores % d == 0]}"
        )
    _check_node_fit(p, field, overridden)
    for name in ("max_model_len", "max_num_seqs"):
        if getattr(p, name) < 1:
            raise PresetError(f"{field}: {name} must be a positive integer, got {getattr(p, name)}")
    check_engine_fit(p, field, overridden, model)
    return p


def resolve_preset(name: str, overrides: dict | None = None,
                   model: KnownModel = DEFAULT_CLUSTER_MODEL) -> AcceleratorPreset:
    """Look a preset up by instance type and apply per-environment overrides (e.g. TP degree), and
    check it can serve `model` (context, HBM)."""
    if name not in PRESETS:
        raise PresetError(f"accelerator_preset: unknown preset {name!r}; allowed: {sorted(PRESETS)}")
    preset = PRESETS[name]
    if overrides:
        # The instance's facts and its price are not configurable, only how the worker uses it.
        allowed = set(AcceleratorPreset.__dataclass_fields__) - {"instance_type", "family", "price"}
        unknown = set(overrides) - allowed
        if unknown:
            raise PresetError(
                f"preset_overrides: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        preset = replace(preset, **overrides)
    return validate_preset(preset, overridden=frozenset(overrides or ()), model=model)


for _preset in PRESETS.values():
    validate_preset(_preset, field=f"PRESETS[{_preset.instance_type!r}]")
