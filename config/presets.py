"""Accelerator presets: one row per supported Inferentia2 / Trainium instance type.

This is the single source of truth for how a vLLM worker is sized on each instance. The Karpenter
NodePools, the RayService worker group and the serving engine settings are all derived from it;
switching instance type is one config value (`accelerator_preset`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class AcceleratorPreset:
    instance_type: str
    family: str  # "inf2" or "trn1": selects the Karpenter NodePool
    neuron_devices: int  # aws.amazon.com/neuron devices on the instance
    neuron_cores: int  # NeuronCores on the instance (2 per device on inf2 and trn1)
    vcpus: int
    memory_gib: int
    # What one Ray worker pod asks for. Leave room for kubelet/system reservations and daemonsets
    # (Neuron device plugin, CloudWatch agent, Fluent Bit, node monitor, kube-proxy, vpc-cni).
    worker_cpu: int
    worker_memory_gib: int
    tensor_parallel_size: int
    max_model_len: int = 8192
    max_num_seqs: int = 8
    block_size: int = 32

    @property
    def cores_per_device(self) -> int:
        return self.neuron_cores // self.neuron_devices

    @property
    def replicas_per_node(self) -> int:
        """vLLM replicas (Ray Serve replicas) one worker pod on this instance hosts."""
        return self.neuron_cores // self.tensor_parallel_size

    @property
    def neuron_core_resource(self) -> int:
        """The `neuron_cores` Ray custom resource a worker pod declares."""
        return self.neuron_cores


# inf2: 1 Inferentia2 device = 2 NeuronCores, 32 GiB HBM. trn1: 1 Trainium device = 2 NeuronCores.
# Llama-3-8B has 32 attention heads / 8 KV heads: TP 2, 8 or 32 split them evenly.
PRESETS: dict[str, AcceleratorPreset] = {
    p.instance_type: p
    for p in (
        AcceleratorPreset("inf2.xlarge", "inf2", 1, 2, 4, 16, worker_cpu=3, worker_memory_gib=10,
                          tensor_parallel_size=2, max_model_len=4096, max_num_seqs=4),
        AcceleratorPreset("inf2.8xlarge", "inf2", 1, 2, 32, 128, worker_cpu=30, worker_memory_gib=110,
                          tensor_parallel_size=2),
        AcceleratorPreset("inf2.24xlarge", "inf2", 6, 12, 96, 384, worker_cpu=90, worker_memory_gib=360,
                          tensor_parallel_size=4),
        AcceleratorPreset("inf2.48xlarge", "inf2", 12, 24, 192, 768, worker_cpu=180, worker_memory_gib=720,
                          tensor_parallel_size=8),
        AcceleratorPreset("trn1.2xlarge", "trn1", 1, 2, 8, 32, worker_cpu=7, worker_memory_gib=26,
                          tensor_parallel_size=2),
        AcceleratorPreset("trn1.32xlarge", "trn1", 16, 32, 128, 512, worker_cpu=120, worker_memory_gib=480,
                          tensor_parallel_size=8),
    )
}
DEFAULT_PRESET = "inf2.8xlarge"

# System reservations a worker pod must leave free on its node (kubelet + daemonsets), checked by
# validate_preset. Conservative figures for AL2023 on EKS with the add-ons this app installs.
RESERVED_CPU = 1
RESERVED_MEMORY_GIB = 6


class PresetError(ValueError):
    pass


def validate_preset(p: AcceleratorPreset, field: str = "accelerator_preset") -> AcceleratorPreset:
    """Reject a preset (or an override of one) that cannot work, before anything is synthesized."""
    if p.tensor_parallel_size < 1 or p.neuron_cores % p.tensor_parallel_size:
        raise PresetError(
            f"{field}: tensor_parallel_size={p.tensor_parallel_size} must divide the {p.neuron_cores} "
            f"NeuronCores of {p.instance_type}; allowed: "
            f"{[d for d in range(1, p.neuron_cores + 1) if p.neuron_cores % d == 0]}"
        )
    if p.worker_cpu > p.vcpus - RESERVED_CPU:
        raise PresetError(
            f"{field}: worker_cpu={p.worker_cpu} does not fit {p.instance_type} ({p.vcpus} vCPU, "
            f"{RESERVED_CPU} reserved for the system); use at most {p.vcpus - RESERVED_CPU}"
        )
    if p.worker_memory_gib > p.memory_gib - RESERVED_MEMORY_GIB:
        raise PresetError(
            f"{field}: worker_memory_gib={p.worker_memory_gib} does not fit {p.instance_type} "
            f"({p.memory_gib} GiB, {RESERVED_MEMORY_GIB} reserved for the system); use at most "
            f"{p.memory_gib - RESERVED_MEMORY_GIB}"
        )
    for name in ("max_model_len", "max_num_seqs", "block_size"):
        if getattr(p, name) < 1:
            raise PresetError(f"{field}: {name} must be a positive integer, got {getattr(p, name)}")
    if p.max_model_len % p.block_size:
        raise PresetError(
            f"{field}: max_model_len={p.max_model_len} must be a multiple of block_size={p.block_size}"
        )
    return p


def resolve_preset(name: str, overrides: dict | None = None) -> AcceleratorPreset:
    """Look a preset up by instance type and apply per-environment overrides (e.g. TP degree)."""
    if name not in PRESETS:
        raise PresetError(f"accelerator_preset: unknown preset {name!r}; allowed: {sorted(PRESETS)}")
    preset = PRESETS[name]
    if overrides:
        allowed = set(AcceleratorPreset.__dataclass_fields__) - {"instance_type", "family"}
        unknown = set(overrides) - allowed
        if unknown:
            raise PresetError(
                f"preset_overrides: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        preset = replace(preset, **overrides)
    return validate_preset(preset)


for _preset in PRESETS.values():
    validate_preset(_preset, field=f"PRESETS[{_preset.instance_type!r}]")
