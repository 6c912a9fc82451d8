"""The vLLM worker as deployed: the accelerator preset resolved against an environment's replica bounds.

`derive_worker_shape(preset, min_replicas, max_replicas)` is the one place the derived figures are
computed; EnvironmentConfig.worker_shape resolves it once per environment, and the NodePools, the
RayService worker group, the serve args, the benchmark's price and the pipeline's cold-start wait all
read it.
A figure computed anywhere else could drift from the one the others use (e.g. the NodePool a worker
selects vs the NodePool that is sized for it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.cold_start import ColdStartBudget, cold_start_budget
from config.names import NODEPOOL_BY_FAMILY
from config.presets import AcceleratorPreset, Price


# One node beyond the worker group's maximum: when Karpenter disrupts a worker node (expiry, drift,
# an unhealthy node) the replacement pod needs a node of its own before the old one is gone.
DISRUPTION_SURGE_NODES = 1


@dataclass(frozen=True)
class WorkerShape:
    preset: AcceleratorPreset  # the resolved preset (overrides applied): engine fields, instance facts
    pool: str  # the Karpenter NodePool the worker nodes come from (the preset's family)
    instance_type: str
    # The Ray worker container's requests = limits.
    cpu: int
    memory_gib: int
    neuron_devices: int
    # Serve replicas one worker pod (one node) hosts: its NeuronCores over the tensor-parallel degree.
    replicas_per_node: int
    # Worker pods (= nodes: one pod per node) for the environment's min/max Serve replicas.
    min_pods: int
    max_pods: int
    # Nodes the NodePool limits leave room for: every worker pod the Ray autoscaler may ask for, plus
    # DISRUPTION_SURGE_NODES so a replacement can launch while a disrupted node still serves.
    max_nodes: int
    # Each replica's share of the pod's CPUs (tokenization, sampling, HTTP), its Ray num_cpus.
    replica_cpus: int
    # The `neuron_cores` Ray custom resource the pod declares: every NeuronCore of the node. Each
    # replica asks for tensor_parallel_size of them, so Ray places exactly replicas_per_node per pod.
    ray_neuron_cores: int
    price: Price  # on-demand, per instance-hour
    cold_start: ColdStartBudget  # the first replica's deadline on a fresh node

    @property
    def family(self) -> str:
        return self.preset.family


def derive_worker_shape(preset: AcceleratorPreset, min_replicas: int, max_replicas: int) -> WorkerShape:
    per_node = preset.replicas_per_node
    # The one number the three limits derive from: Serve's max_replicas (the environment's), the Ray
    # autoscaler's worker-group maxReplicas (the pods that host them) and the NodePool limits (those
    # pods' nodes plus the surge). They used to disagree: the NodePool had room for max_replicas nodes.
    max_pods = math.ceil(max_replicas / per_node)
    return WorkerShape(
        preset=preset,
        pool=NODEPOOL_BY_FAMILY[preset.family],
        instance_type=preset.instance_type,
        cpu=preset.worker_cpu,
        memory_gib=preset.worker_memory_gib,
        neuron_devices=preset.neuron_devices,
        replicas_per_node=per_node,
        min_pods=math.ceil(min_replicas / per_node),
        max_pods=max_pods,
        max_nodes=max_pods + DISRUPTION_SURGE_NODES,
        replica_cpus=preset.worker_cpu // per_node,
        ray_neuron_cores=preset.neuron_cores,
        price=preset.price,
        cold_start=cold_start_budget(preset),
    )
