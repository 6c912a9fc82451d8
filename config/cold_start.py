"""Cold-start budget: how long a replica takes on a fresh node, per accelerator preset, phase by phase.

Two paths, both computed here from the inputs below:

* the **cold path** (`ColdStartBudget.phases`), issue 12's goal: a fresh node answers its first token
  within GOAL_SECONDS of Karpenter deciding to launch it. The S3 model store holds the weights and the
  Neuron compiled artifacts for the compile key, so nothing compiles: launch, node ready, image pull,
  weights fetch, artifact fetch, Neuron load, engine warm-up, Serve ready.
* the **first deploy** (`ColdStartBudget.first_deploy`): nothing in the store yet, so the weights come
  from the Hugging Face hub and the model compiles once before it loads. Much longer, and what every
  readiness timeout must cover: the smoke test waits `budget_seconds` for the RayService to become Ready
  (platform_constructs/smoke_test/runtime/pipeline_step.py, via stacks/pipeline_stack.py), and KubeRay's
  `ray.io/initializing-timeout` is the same figure (`ColdStartBudget.initializing_timeout`,
  k8s_charts/vllm_chart.py), so neither gives up before the other. Both read it from the environment's
  worker shape (config/worker_shape.py), which computes it once.

Every phase carries its figure, how it was obtained (`kind`) and its `basis` (the source, with a URL).
`kind`: "computed" (bytes / a rate, each from a cited source), "measured" (a public measurement of this
step), "proxy" (a measurement of a comparable step, public or taken here with a script of tools/bench/: the
basis says what differs) or "estimate" (nobody has measured it; the basis says so). No figure here was
measured on inf2 (no account here): a first real deploy should replace the proxies and estimates --
change them here, nowhere else.
`make cold-start` (tools/cold_start.py) prints all of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config import node_io
from config.node_io import MB
from config.presets import AcceleratorPreset

GOAL_SECONDS = 180  # issue 12: first token within 3 minutes of Karpenter's launch decision

# --- the bytes -------------------------------------------------------------------------------------
# Meta-Llama-3-8B-Instruct in bf16: four safetensors shards, 16.07 GB in all (the Hugging Face
# repository's file list, https://huggingface.co/meta-llama/Meta-Llama-3-8B-Instruct/tree/main); the
# NousResearch mirror the platform defaults to has the same files.
WEIGHTS_GB = 16.07
# The serving image: the Neuron vLLM DLC (config/versions.py NEURON_VLLM_IMAGE) plus Ray and this app
# (serving/Dockerfile). Its compressed size is not published and cannot be read offline. The one public
# figure: the Neuron vLLM DLCs are "huge! 18+GB" (https://github.com/vllm-project/vllm/issues/4838,
# comment of 2025-11-12, SDK 2.26.1 images; most likely `docker images`' unpacked size). Taken as the
# bytes to pull it is an upper bound: the GPU vLLM DLC the pull rate below was measured on is 9.35 GB
# compressed. Replace with the real figure (`crane manifest` / `docker manifest inspect -v`, sum of the
# layer sizes) once an account is at hand.
IMAGE_GB = 18.0
IMAGE_BASIS = "18+ GB (vllm-project/vllm#4838, upper bound: not measured for this tag)"
# The Neuron compiled artifacts of one compile key (NxD Inference NEFFs for the context-encoding and
# token-generation buckets). No public size; the S3 model store's manifest will record it.
ARTIFACT_GB = 1.0

# --- phase figures ----------------------------------------------------------------------------------
# 1. Karpenter's decision -> an instance booted. The clock starts at the decision (Karpenter's batching
# window, BATCH_IDLE_DURATION 1 s / BATCH_MAX_DURATION 10 s, Karpenter v1.14.1 website/.../settings.md,
# comes before it). RunInstances to SSH: 25.8 s average (API 19 %, pending->running 69 %, boot->SSH 12 %),
# instance family within 0.7 s across t3/m6i/m7i/c7i/r7i (brevdev/ec2-coldboot-research, @fix_plan.md).
# Not measured on inf2 or with an encrypted root (martysweet.co.uk/ec2-launch-times: encryption slows
# launches, October 2023).
EC2_LAUNCH_S = 25.8
EC2_LAUNCH_BASIS = ("RunInstances -> SSH 25.8 s avg, t3/m6i/m7i/c7i/r7i "
                    "(https://github.com/brevdev/ec2-coldboot-research); not inf2, unencrypted root")
# 2. Booted -> node Ready with aws.amazon.com/neuron advertised (nodeadm, containerd, kubelet registration,
# the VPC CNI, then the Neuron device plugin DaemonSet pod pulled, started and registered: what Karpenter's
# NodeClaim condition Initialized waits for). Nearest public measurement, AWS's node-latency-for-k8s on
# c6a.large (AL2 EKS AMI, December 2022, https://github.com/awslabs/node-latency-for-k8s README examples 1
# and 2): Cloud-Init Initial Start (the OS is up) at 15 / 16 s, Node Ready at 30 / 24 s, and a DaemonSet
# pod (aws-node: image pulled, started, Ready, as the device plugin's must be) Ready at 29 / 30 s: 14-15 s
# from boot to a Ready node with a running DaemonSet pod. AL2023 adds `nodeadm init`, which AL2 did not
# run: 12.9-13.6 s on m6i CI nodes (https://github.com/awslabs/amazon-eks-ami/pull/1991, comment of
# 2024-10-15, before that PR's fix). 15 + 13.6 = 28.6 s, budgeted 30 s. Not measured on inf2: the Neuron
# driver is in the AMI, but the device plugin registers the resource after its pod starts. Read the
# NodeClaim's Launched -> Initialized transition times on a first deploy to replace it.
NODE_READY_S = 30
NODE_READY_BASIS = ("boot -> Ready node with a DaemonSet pod Ready 14-15 s (c6a.large, AL2; "
                    "https://github.com/awslabs/node-latency-for-k8s) + AL2023 nodeadm init 13.6 s (m6i; "
                    "https://github.com/awslabs/amazon-eks-ami/pull/1991); not inf2, Neuron device plugin "
                    "registration not measured")
# 3. Image pull with SOCI parallel pull (the Neuron EC2NodeClass enables nodeadm's FastImagePull,
# platform_constructs/karpenter_pools.py): the AWS DLC for vLLM, 9,354,342,327 bytes, pulled in 39.553 s
# on AL2023 with FastImagePull vs 2 min 10.813 s with containerd's default, on instances with > 8 Gbps of
# network and EBS bandwidth and a gp3 root at 16,000 IOPS / 1,000 MiB/s (aws-samples/karpenter-blueprints
# blueprints/soci-snapshotter/README.md, "Results"). As rates of compressed bytes:
SOCI_PULL_MEASURED = (9_354_342_327, 39.553)
DEFAULT_PULL_MEASURED = (9_354_342_327, 130.813)
PULL_SOURCE = "https://github.com/aws-samples/karpenter-blueprints/tree/main/blueprints/soci-snapshotter"
# The measurement selected instances above this network and EBS bandwidth; below it the rate is extrapolated.
PULL_MEASURED_MIN_MBPS = 8000
# 6. Neuron load: compiled graphs and weights onto the NeuronCores, nothing compiled. The nearest public
# measurement: Llama-2-7B from a pre-populated compile cache with a safetensors checkpoint, "~40 seconds"
# (AWS, https://github.com/aws-neuron/transformers-neuronx/issues/80, comment of 2024-04-09) --
# transformers-neuronx on trn1.32xlarge at TP 32, not NxD Inference at TP 2 on inf2.
NEURON_LOAD_S = 40
NEURON_LOAD_BASIS = ("Llama-2-7B, precompiled, safetensors: ~40 s (AWS, "
                     "https://github.com/aws-neuron/transformers-neuronx/issues/80); transformers-neuronx, "
                     "trn1.32xlarge TP 32, not NxDI TP 2 on inf2")
# 7. Engine warm-up: vLLM's first passes over every bucket after the load. Not measured publicly on Neuron.
WARMUP_S = 10
# 8. Serve ready: everything of a replica's start but the model itself. The worker's raylet joins the head,
# the Serve replica is placed and its process starts, vLLM imports and configures itself and starts its
# EngineCore and worker processes, builds its OpenAI app, the first health check passes, HAProxy routes,
# the first token comes back. Measured here (tools/bench/serve_ready.py, 3 starts of local mode with the
# tiny model, 2 vCPUs, Ray 2.60, vLLM 0.32 on the CPU, 2026-12-04): medians worker join 1.13 s, Ray
# placement 1.20 s, vLLM start and ASGI app 18.73 s, routed to the first token 0.11 s: 22.37 s (20.92-23.32).
# On Neuron vLLM 0.16 with vllm-neuron imports other packages (torch-neuronx, NxD Inference) on other cores.
SERVE_READY_S = 23
SERVE_READY_BASIS = ("measured here, tools/bench/serve_ready.py (local mode, 2 vCPUs, vLLM 0.32 on the CPU): "
                     "worker join 1.1 s + Ray placement 1.2 s + vLLM start and its OpenAI app 18.7 s + routed to "
                     "the first token 0.1 s = 22.4 s (3 starts, 20.9-23.3 s); not inf2, not vllm-neuron's imports")

# --- first deploy only ------------------------------------------------------------------------------
# The store is empty: the weights come from the Hugging Face hub. A conservative 50 MB/s from the hub to
# one EC2 instance (a busy hub and a single-stream client; a good day is several times faster). Estimate.
HUB_MB_PER_S = 50.0
# Neuron compilation of the model (NxD Inference traces and compiles one graph per bucket; with the
# default bucketing the count grows with max_model_len). Issue 9: "tens of minutes"; config/presets.py
# records the original blueprint's replica compiling and loading in 10 min 40 s at 4096 tokens on
# inf2.8xlarge. Budget 20 min for 4096 tokens (about twice that) and 150 s per further 1024.
COMPILE_BASE_S = 1200
COMPILE_BASE_TOKENS = 4096
COMPILE_PER_1K_TOKENS_S = 150
# The deadline every readiness timeout uses: the first deploy times this margin, rounded up to 5 minutes.
MARGIN = 1.5
ROUND_TO_S = 300

# The original blueprint's figure, printed beside the budget (awslabs/data-on-eks
# gen-ai/inference/vllm-rayserve-inf2, as recorded in config/presets.py and docs/serving.md): "10 mins 40
# secs to load" (compile + load) on inf2.8xlarge at 4096 tokens, node launch and image pull not counted;
# its instructions wait up to 10 minutes for the worker.
BLUEPRINT_LOAD_S = 640
BLUEPRINT_WAIT_S = 600
BLUEPRINT = ("blueprint (awslabs/data-on-eks vllm-rayserve-inf2): compile + load 640 s on inf2.8xlarge, "
             "node and image not counted; it waits up to 10 min (600 s) for a worker")

KINDS = ("computed", "measured", "proxy", "estimate")


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: int
    basis: str  # where the figure comes from, with a URL
    kind: str = "computed"  # one of KINDS

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"phase {self.name!r}: kind {self.kind!r} not in {KINDS}")

    @property
    def sourced(self) -> bool:
        """Backed by a public measurement or computed from cited figures (a proxy says what differs)."""
        return self.kind != "estimate"


@dataclass(frozen=True)
class ColdStartBudget:
    instance_type: str
    phases: tuple[Phase, ...]  # the cold path: a fresh node, artifacts in the store (the 180 s goal)
    first_deploy: tuple[Phase, ...]  # nothing in the store: one compile (what the deadline covers)

    @property
    def cold_seconds(self) -> int:
        return sum(p.seconds for p in self.phases)

    @property
    def first_deploy_seconds(self) -> int:
        return sum(p.seconds for p in self.first_deploy)

    @property
    def unsourced(self) -> tuple[Phase, ...]:
        return tuple(p for p in self.phases if not p.sourced)

    @property
    def meets_goal(self) -> bool:
        """Issue 12's done-criterion: the cold path under GOAL_SECONDS with every phase sourced."""
        return self.cold_seconds < GOAL_SECONDS and not self.unsourced

    @property
    def budget_seconds(self) -> int:
        """The deadline: the first deploy with the margin, rounded up to whole 5-minute steps."""
        return math.ceil(self.first_deploy_seconds * MARGIN / ROUND_TO_S) * ROUND_TO_S

    @property
    def initializing_timeout(self) -> str:
        """The `ray.io/initializing-timeout` value (Go duration): KubeRay gives up at the same deadline."""
        return f"{self.budget_seconds // 60}m"

    @property
    def smoke_step_timeout_minutes(self) -> int:
        """The pipeline's smoke step: the Ready deadline plus the check run (STEP_OVERHEAD_SECONDS)."""
        return math.ceil((self.budget_seconds + STEP_OVERHEAD_SECONDS) / 60)

    def describe(self) -> str:
        parts = ", ".join(f"{p.name} {p.seconds} s" for p in self.phases)
        return (f"{self.instance_type}: {parts}; cold {self.cold_seconds} s (goal {GOAL_SECONDS} s); "
                f"first deploy {self.first_deploy_seconds} s; budget {self.budget_seconds // 60} min (x{MARGIN})")


def _rate(measured: tuple[int, float]) -> float:
    size, seconds = measured
    return size / seconds / MB


def image_pull_rate(instance_type: str) -> tuple[float, bool]:
    """MB/s of compressed image with SOCI parallel pull on this instance type, and whether the instance is
    within the measurement's conditions (> PULL_MEASURED_MIN_MBPS network and EBS) or extrapolated."""
    io = node_io.INSTANCE_IO[instance_type]
    within = io.network_baseline_mbps > PULL_MEASURED_MIN_MBPS and io.ebs_max_mbps > PULL_MEASURED_MIN_MBPS
    rate = min(_rate(SOCI_PULL_MEASURED), io.network_mb_per_s, node_io.disk_write_mb_per_s(instance_type))
    return rate, within


def _seconds(gb: float, mb_per_s: float) -> int:
    return math.ceil(gb * 1000 / mb_per_s)


def _common_phases(preset: AcceleratorPreset) -> tuple[tuple[Phase, ...], Phase]:
    itype = preset.instance_type
    rate, within = image_pull_rate(itype)
    default_s = _seconds(IMAGE_GB, _rate(DEFAULT_PULL_MEASURED))
    pull_s = _seconds(IMAGE_GB, rate)
    pull_basis = (f"{IMAGE_BASIS} at {rate:.0f} MB/s: SOCI parallel pull measured {_rate(SOCI_PULL_MEASURED):.0f} MB/s "
                  f"on a 9.35 GB DLC (containerd default {_rate(DEFAULT_PULL_MEASURED):.0f} MB/s: {default_s} s here, "
                  f"so it saves {default_s - pull_s} s), {PULL_SOURCE}")
    if not within:
        pull_basis += f"; extrapolated: {itype} is below the measurement's {PULL_MEASURED_MIN_MBPS} Mbps network/EBS"
    head = (
        Phase("Karpenter + EC2 launch", math.ceil(EC2_LAUNCH_S), EC2_LAUNCH_BASIS, "proxy"),
        Phase("node ready", NODE_READY_S, NODE_READY_BASIS, "proxy"),
        Phase("image pull", pull_s, pull_basis, "computed" if within else "estimate"),
    )
    load = Phase("Neuron load", NEURON_LOAD_S, NEURON_LOAD_BASIS, "proxy")
    return head, load


def _tail() -> tuple[Phase, ...]:
    return (
        Phase("engine warm-up", WARMUP_S, "vLLM's first pass over each bucket: estimate, not measured on Neuron",
              "estimate"),
        Phase("Serve ready", SERVE_READY_S, SERVE_READY_BASIS, "proxy"),
    )


def _s3_phase(name: str, gb: float, itype: str, what: str, kind: str = "computed") -> Phase:
    limits = node_io.s3_fetch_limits(itype)
    rate, binding = node_io.s3_fetch_mb_per_s(itype)
    others = ", ".join(f"{k} {v:.0f}" for k, v in limits.items() if k != binding)
    return Phase(name, _seconds(gb, rate),
                 f"{what} at {rate:.0f} MB/s, bound by {binding} (others, MB/s: {others}; "
                 f"{node_io.S3_SOURCE}, {node_io.IO_SOURCE})", kind)


def compile_seconds(preset: AcceleratorPreset) -> int:
    extra_tokens = max(0, preset.max_model_len - COMPILE_BASE_TOKENS)
    return COMPILE_BASE_S + math.ceil(extra_tokens / 1024) * COMPILE_PER_1K_TOKENS_S


def compile_wait_seconds(preset: AcceleratorPreset) -> int:
    """How long a worker that lost the model store's compile lease waits for the winner's artifacts
    before it compiles locally (serving/model_store.py `fetch --wait-s`): the compile with the margin."""
    return math.ceil(compile_seconds(preset) * MARGIN)


def cold_start_budget(preset: AcceleratorPreset) -> ColdStartBudget:
    itype = preset.instance_type
    head, load = _common_phases(preset)
    weights = _s3_phase("weights fetch", WEIGHTS_GB, itype, f"{WEIGHTS_GB:g} GB safetensors (HF file list)")
    artifacts = _s3_phase("artifact fetch", ARTIFACT_GB, itype,
                          f"{ARTIFACT_GB:g} GB of compiled artifacts (size an estimate: not published)", "estimate")
    compile_ = Phase("Neuron compile", compile_seconds(preset),
                     f"estimate, max_model_len={preset.max_model_len}: {COMPILE_BASE_S // 60} min at "
                     f"{COMPILE_BASE_TOKENS} + {COMPILE_PER_1K_TOKENS_S} s per 1024 tokens (about 2x the blueprint's "
                     f"10 min 40 s compile + load at 4096)",
                     "estimate")
    hub = Phase("weights download", _seconds(WEIGHTS_GB, HUB_MB_PER_S),
                f"{WEIGHTS_GB:g} GB from the Hugging Face hub at {HUB_MB_PER_S:g} MB/s (store empty; estimate)",
                "estimate")
    publish = _s3_phase("artifact publish", ARTIFACT_GB, itype,
                        f"{ARTIFACT_GB:g} GB up to the store (size an estimate)", "estimate")
    return ColdStartBudget(
        itype,
        phases=(*head, weights, artifacts, load, *_tail()),
        first_deploy=(*head, hub, compile_, publish, load, *_tail()),
    )


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
