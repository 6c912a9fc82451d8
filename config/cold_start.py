"""Cold-start budget: how long a first replica may take on a fresh node, per accelerator preset.

CloudFormation reports a deploy complete once the manifests are applied; the first replica still has
to go through every phase below. The smoke test waits this long for the RayService to become Ready
(platform_constructs/smoke_test/runtime/pipeline_step.py, via stacks/pipeline_stack.py), and KubeRay's
`ray.io/initializing-timeout` on the RayService is the same figure (`ColdStartBudget.initializing_timeout`,
k8s_charts/vllm_chart.py), so neither gives up before the other. Both read it from the environment's
worker shape (config/worker_shape.py), which computes it once.

The figures are ESTIMATES, not measurements on this platform (no account here); each names its basis.
A later issue refines them from real first deploys -- change them here, nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.presets import AcceleratorPreset

# Meta-Llama-3-8B-Instruct in bf16: four safetensors shards, 16.07 GB in all (the Hugging Face
# repository's file list); the NousResearch mirror the platform defaults to has the same files.
WEIGHTS_GB = 16.1
# Download rate assumed from the Hugging Face hub to one EC2 instance: a conservative 50 MB/s (a busy
# hub and a single-stream client; a good day is several times faster).
WEIGHTS_MB_PER_S = 50.0
# The Neuron vLLM DLC (config/versions.py NEURON_VLLM_IMAGE): about 10 GB of compressed layers (torch,
# neuronx-cc, NxD Inference, vLLM); pulled and unpacked onto the node's gp3 root (1000 MB/s).
IMAGE_GB = 10.0
IMAGE_MB_PER_S = 25.0  # pull + unpack together, as containerd does it: a conservative rate
# Karpenter creates the instance within about a minute of the pending pod; AL2023 boot, kubelet
# registration and the Neuron device plugin advertising aws.amazon.com/neuron add a few more. The
# largest instances (48xlarge/32xlarge) are slower to boot; budget a little more.
NODE_LAUNCH_S = 300
NODE_LAUNCH_LARGE_S = 420
# Neuron compilation of the model (NxD Inference traces and compiles one graph per bucket; with the
# default bucketing the count grows with max_model_len). Issue 9: "tens of minutes"; config/presets.py
# records the original blueprint's replica compiling and loading in 10 min 40 s at 4096 tokens on
# inf2.8xlarge. Budget 20 min for 4096 tokens (about twice that) and 150 s per further 1024.
# Compiles run once per worker pod: the model cache is an emptyDir (docs/charts.md), kept across container
# restarts but not pod replacements, until the S3 model store (issue 12) lets a new pod skip them.
COMPILE_BASE_S = 1200
COMPILE_BASE_TOKENS = 4096
COMPILE_PER_1K_TOKENS_S = 150
# Loading the compiled graphs and the weights onto the NeuronCores, then vLLM's warm-up.
ENGINE_LOAD_S = 300
# The budget is the sum of the phases times this margin, rounded up to whole 5 minutes.
MARGIN = 1.5
ROUND_TO_S = 300


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: int
    basis: str  # where the figure comes from


@dataclass(frozen=True)
class ColdStartBudget:
    instance_type: str
    phases: tuple[Phase, ...]

    @property
    def expected_seconds(self) -> int:
        return sum(p.seconds for p in self.phases)

    @property
    def budget_seconds(self) -> int:
        """The deadline: expected time with the margin, rounded up to whole 5-minute steps."""
        return math.ceil(self.expected_seconds * MARGIN / ROUND_TO_S) * ROUND_TO_S

    @property
    def initializing_timeout(self) -> str:
        """The `ray.io/initializing-timeout` value (Go duration): KubeRay gives up at the same deadline."""
        return f"{self.budget_seconds // 60}m"

    @property
    def smoke_step_timeout_minutes(self) -> int:
        """The pipeline's smoke step: the Ready deadline plus the check run (STEP_OVERHEAD_SECONDS)."""
        return math.ceil((self.budget_seconds + STEP_OVERHEAD_SECONDS) / 60)

    def describe(self) -> str:
        parts = ", ".join(f"{p.name} {p.seconds // 60} min" for p in self.phases)
        return f"{self.instance_type}: {parts}; budget {self.budget_seconds // 60} min (x{MARGIN})"


def cold_start_budget(preset: AcceleratorPreset) -> ColdStartBudget:
    large = preset.vcpus >= 128
    extra_tokens = max(0, preset.max_model_len - COMPILE_BASE_TOKENS)
    compile_s = COMPILE_BASE_S + math.ceil(extra_tokens / 1024) * COMPILE_PER_1K_TOKENS_S
    return ColdStartBudget(preset.instance_type, (
        Phase("node launch", NODE_LAUNCH_LARGE_S if large else NODE_LAUNCH_S,
              "Karpenter launch + AL2023 boot + Neuron device plugin (estimate)"),
        Phase("image pull", math.ceil(IMAGE_GB * 1000 / IMAGE_MB_PER_S),
              f"~{IMAGE_GB:g} GB Neuron DLC at {IMAGE_MB_PER_S:g} MB/s pull+unpack (estimate)"),
        Phase("weights download", math.ceil(WEIGHTS_GB * 1000 / WEIGHTS_MB_PER_S),
              f"{WEIGHTS_GB:g} GB safetensors (HF repo) at {WEIGHTS_MB_PER_S:g} MB/s"),
        Phase("Neuron compile", compile_s,
              f"max_model_len={preset.max_model_len}: {COMPILE_BASE_S // 60} min at {COMPILE_BASE_TOKENS} "
              f"+ {COMPILE_PER_1K_TOKENS_S} s per 1024 tokens (about 2x the blueprint's 10 min 40 s at 4096)"),
        Phase("engine load", ENGINE_LOAD_S, "graphs + weights onto NeuronCores, vLLM warm-up (estimate)"),
    ))


def ready_deadline_seconds(preset: AcceleratorPreset) -> int:
    """How long the smoke test waits for the RayService's Ready condition after a deploy."""
    return cold_start_budget(preset).budget_seconds


def initializing_timeout(preset: AcceleratorPreset) -> str:
    """The `ray.io/initializing-timeout` value (Go duration) for this preset's RayService."""
    return cold_start_budget(preset).initializing_timeout


# Once Ready, the smoke Job waits at most this long for the API to list the model and answer.
API_WAIT_SECONDS = 600
# The pipeline's smoke step: wait for Ready, then one Lambda run (<= 15 min) for the check, plus room.
STEP_OVERHEAD_SECONDS = 15 * 60 + 300


def smoke_step_timeout_minutes(preset: AcceleratorPreset) -> int:
    return cold_start_budget(preset).smoke_step_timeout_minutes
