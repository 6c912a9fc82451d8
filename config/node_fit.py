"""What Karpenter v1.14.1 (AWS provider) believes a not-yet-launched inf2/trn1 node can hold.

Karpenter launches a node for a pending pod only if the pod's requests plus the requests of every
DaemonSet that would land on that node fit the instance type's *estimated* allocatable. Before a node
of a type has ever run in the cluster it has nothing better than this estimate, so a preset that does
not fit it never gets a node: the worker pod stays Pending with no error anywhere in CloudFormation.
This module recomputes the estimate term by term; presets.validate_preset rejects what does not fit.

Sources (read at these versions; cited per term below):
  [P] github.com/aws/karpenter-provider-aws @ v1.14.1 (bde00654cd31)
      pkg/providers/instancetype/types.go, pkg/operator/options/options.go,
      pkg/providers/amifamily/resolver.go (DefaultFamily.FeatureFlags; AL2023 embeds it),
      pkg/providers/instancetype/zz_generated.vpclimits.go,
      website/content/en/docs/reference/instance-types.md (the figures Karpenter itself publishes)
  [C] github.com/kubernetes-sigs/karpenter @ 6e7eab7a0f48 (the core version [P]'s go.mod pins)
      pkg/cloudprovider/types.go, pkg/controllers/provisioning/scheduling/scheduler.go,
      pkg/controllers/provisioning/provisioner.go, pkg/utils/resources/resources.go

We model Karpenter, not the kubelet: the node that finally boots may report more allocatable (AL2023's
nodeadm caps max pods lower than the ENI limit), which does not help if Karpenter never launches it.
Once a type has run, Karpenter caches the node's observed memory ("used when cached information is
unavailable", [P] options.go VMMemoryOverheadPercent); the first launch, the one that matters, uses this.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

KARPENTER_MODEL_VERSION = "1.14.1"  # the Karpenter release this model follows (config.versions.KARPENTER_VERSION)

# [P] options.go: --vm-memory-overhead-percent, env VM_MEMORY_OVERHEAD_PERCENT, default 0.075; the
# Karpenter chart (charts/karpenter/values.yaml settings.vmMemoryOverheadPercent) keeps 0.075 and
# platform_constructs/addons/karpenter.py does not override it.
VM_MEMORY_OVERHEAD_PERCENT = 0.075
# [P] options.go: --reserved-enis, env RESERVED_ENIS, default 0 (chart settings.reservedENIs "0"). Meant for
# VPC CNI custom networking (ENIConfig), where the primary ENI carries no pod IPs. This platform does not
# use custom networking: the nodes themselves sit in the 100.64.0.0/16 subnets (platform_constructs/
# pod_subnets.py), so every ENI serves pods and 0 is right. Note that even with reservedENIs set, AL2023's
# kube-reserved memory uses the ENI limit with 0 reserved ENIs ([P] types.go NewInstanceType).
RESERVED_ENIS = 0
# [P] types.go evictionThreshold(): memory.available hard eviction default 100Mi (no kubelet.evictionHard set).
EVICTION_HARD_MEMORY_MIB = 100


@dataclass(frozen=True)
class InstanceFacts:
    vcpus: int  # DescribeInstanceTypes VCpuInfo.DefaultVCpus
    memory_mib: int  # DescribeInstanceTypes MemoryInfo.SizeInMiB
    max_enis: int  # NetworkCards[DefaultNetworkCardIndex].MaximumNetworkInterfaces
    ipv4_per_eni: int  # NetworkInfo.Ipv4AddressesPerInterface


# The one table of instance facts. vCPU and MiB: the labels karpenter.k8s.aws/instance-cpu and
# karpenter.k8s.aws/instance-memory in [P] website/content/en/docs/reference/instance-types.md; ENIs
# and IPs per ENI: [P] zz_generated.vpclimits.go (Interface / IPv4PerInterface / NetworkCards). The
# VPC CNI uses only the default network card ([P] types.go ENILimitedPods), so trn1.32xlarge counts 5
# ENIs (card 0), not the 40 of its 8 cards.
INSTANCE_TYPES: dict[str, InstanceFacts] = {
    "inf2.xlarge": InstanceFacts(vcpus=4, memory_mib=16384, max_enis=4, ipv4_per_eni=15),
    "inf2.8xlarge": InstanceFacts(vcpus=32, memory_mib=131072, max_enis=8, ipv4_per_eni=30),
    "inf2.24xlarge": InstanceFacts(vcpus=96, memory_mib=393216, max_enis=15, ipv4_per_eni=50),
    "inf2.48xlarge": InstanceFacts(vcpus=192, memory_mib=786432, max_enis=15, ipv4_per_eni=50),
    "trn1.2xlarge": InstanceFacts(vcpus=8, memory_mib=32768, max_enis=4, ipv4_per_eni=15),
    "trn1.32xlarge": InstanceFacts(vcpus=128, memory_mib=524288, max_enis=5, ipv4_per_eni=50),
}


@dataclass(frozen=True)
class DaemonSetRequests:
    """One DaemonSet of this platform: its pod's effective requests and whether it lands on a Neuron node."""

    name: str
    installed_by: str
    cpu_m: int
    memory_mib: int
    lands_on_neuron_nodes: bool  # tolerates aws.amazon.com/neuron:NoSchedule AND its selectors match
    source: str  # where the figure and the toleration come from
    verified: bool  # False: not checkable offline, a conservative figure is used


# Every DaemonSet the synthesized app installs (stacks/cluster_stack.py managed add-ons,
# platform_constructs/addons/*). Karpenter adds the requests of each one whose pod tolerates the
# NodePool's taints and whose node selector / required affinity is compatible with the NodePool and
# instance type ([C] scheduler.go buildDaemonOverheadGroups + isDaemonPodCompatible; the pod comes from
# the DaemonSet's template, [C] provisioner.go getDaemonSetPods; its requests are
# max(max(init), sum(containers)) per resource, [C] resources.go RequestsForPods -> PodRequests).
# Managed add-ons are not version-pinned (EKS installs its default for the cluster version), so chart
# figures are those of the public chart named; they have been stable across the versions checked.
DAEMONSETS: tuple[DaemonSetRequests, ...] = (
    DaemonSetRequests(
        "aws-node", "EKS add-on vpc-cni (network policy agent on)", 50, 0, True,
        "aws/amazon-vpc-cni-k8s charts/aws-vpc-cni v1.23.1 values.yaml: resources.requests.cpu 25m, used by "
        "aws-node and (default) aws-eks-nodeagent, 25m init; tolerations [operator: Exists]", True),
    DaemonSetRequests(
        "kube-proxy", "EKS add-on kube-proxy", 100, 64, True,
        "EKS-generated manifest, not public: 100m CPU as EKS kube-proxy DaemonSets request, plus 64Mi "
        "memory as a margin; tolerations [operator: Exists]", False),
    DaemonSetRequests(
        "eks-pod-identity-agent", "EKS add-on eks-pod-identity-agent", 50, 64, True,
        "aws/eks-pod-identity-agent charts values.yaml: resources {} (no requests), tolerations "
        "[operator: Exists]; the add-on's own manifest is not public, conservative 50m/64Mi used", False),
    DaemonSetRequests(
        "ebs-csi-node", "EKS add-on aws-ebs-csi-driver", 30, 104, True,
        "kubernetes-sigs/aws-ebs-csi-driver chart 2.64.0: node.resources 10m/40Mi, templates/_node.tpl "
        "node-driver-registrar and liveness-probe defaults 10m/32Mi each; node.tolerateAllTaints true", True),
    DaemonSetRequests(
        "cloudwatch-agent", "EKS add-on amazon-cloudwatch-observability", 250, 128, True,
        "aws-observability/helm-charts amazon-cloudwatch-observability 2.3.1-6.4.0 values.yaml: "
        "agent.resources.requests 250m/128Mi; root tolerations [operator: Exists]", True),
    DaemonSetRequests(
        "fluent-bit", "EKS add-on amazon-cloudwatch-observability (containerLogs)", 50, 25, True,
        "same chart: containerLogs.fluentBit.resources.requests 50m/25Mi; root tolerations", True),
    DaemonSetRequests(
        "neuron-monitor", "EKS add-on amazon-cloudwatch-observability", 256, 128, True,
        "same chart: neuronMonitor.resources.requests 256m/128Mi; affinity: inf1/inf2/trn1/trn2 instance "
        "types; root tolerations", True),
    DaemonSetRequests(
        "neuron-device-plugin", "Neuron Helm chart 1.9.0 (platform_constructs/addons/neuron.py)", 50, 64, True,
        "aws-neuron/neuron-helm-charts values.yaml: devicePlugin has no requests (1.10.0 shows "
        "resources: {}); 1.9.0 itself not readable offline, conservative 50m/64Mi used; tolerates "
        "aws.amazon.com/neuron NoSchedule", False),
    DaemonSetRequests(
        "node-problem-detector", "Neuron Helm chart 1.9.0 (npd.enabled)", 10, 80, True,
        "aws-neuron/neuron-helm-charts values.yaml: npd.nodeProblemDetector.resources.requests 10m/80Mi; "
        "tolerations [NoSchedule Exists, NoExecute Exists]", True),
    DaemonSetRequests(
        "eks-node-monitoring-agent", "EKS add-on eks-node-monitoring-agent (platform_constructs/addons/cluster_health.py)",
        50, 64, True,
        "EKS-generated manifest, not public offline; the agent runs on every node (it reports Neuron "
        "health too), conservative 50m/64Mi used", False),
    # Installed, but never on an inf2/trn1 node:
    DaemonSetRequests(
        "dcgm-exporter", "EKS add-on amazon-cloudwatch-observability", 250, 128, False,
        "same chart: affinity limited to NVIDIA GPU instance types", True),
    DaemonSetRequests(
        "cloudwatch-agent-windows / fluent-bit-windows", "EKS add-on amazon-cloudwatch-observability", 0, 0, False,
        "same chart: nodeSelector kubernetes.io/os: windows", True),
)
# Not DaemonSets: coredns, Karpenter, KubeRay, External Secrets, the Neuron scheduler extension and
# its kube-scheduler, the CloudWatch manager (Deployments on the core nodes). The add-on's node-exporter
# and kube-state-metrics render only with otelContainerInsights.enabled (false here).


@dataclass(frozen=True)
class Requests:
    cpu_m: int
    memory_mib: int


def parse_cpu_m(quantity: str) -> int:
    """A Kubernetes CPU quantity ("2", "0.5", "250m") in millicores."""
    q = str(quantity)
    return int(q[:-1]) if q.endswith("m") else int(round(float(q) * 1000))


_MEMORY_UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}


def parse_memory_mib(quantity: str) -> float:
    """A Kubernetes memory quantity with a binary suffix (what this app writes) in MiB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)", str(quantity))
    if not m:
        raise ValueError(f"unsupported memory quantity {quantity!r}")
    return float(m.group(1)) * _MEMORY_UNITS[m.group(2)]


def pod_requests(containers: list[Requests], init_containers: list[Requests]) -> Requests:
    """A pod's effective requests as the scheduler and Karpenter count them: per resource,
    max(largest init container, sum of containers) (k8s.io/component-helpers resource.PodRequests,
    used by [C] resources.go Ceiling; no restartable sidecar init containers here)."""
    def effective(attr: str) -> int:
        total = sum(getattr(c, attr) for c in containers)
        return max([total, *(getattr(c, attr) for c in init_containers)])
    return Requests(effective("cpu_m"), effective("memory_mib"))


def eni_limited_pods(facts: InstanceFacts, reserved_enis: int = RESERVED_ENIS) -> int:
    """[P] types.go ENILimitedPods: usable ENIs x (IPv4 per ENI - 1) + 2 (no EFA-only interfaces here)."""
    usable = max(facts.max_enis - reserved_enis, 0)
    return usable * (facts.ipv4_per_eni - 1) + 2 if usable else 0


def kube_reserved_cpu_m(vcpus: int) -> int:
    """[P] types.go kubeReservedResources: 6% of the first core, 1% of the second, 0.5% of cores 3-4,
    0.25% of the rest (the Bottlerocket/EKS formula), truncated to whole millicores per range."""
    milli, total = vcpus * 1000, 0
    for start, end, pct in ((0, 1000, 0.06), (1000, 2000, 0.01), (2000, 4000, 0.005), (4000, 1 << 31, 0.0025)):
        if milli >= start:
            total += int((min(milli, end) - start) * pct)
    return total


@dataclass(frozen=True)
class NodeEstimate:
    instance_type: str
    capacity_cpu_m: int
    capacity_memory_mib: int
    pods: int
    kube_reserved_cpu_m: int
    kube_reserved_memory_mib: int
    eviction_memory_mib: int
    daemonsets: tuple[DaemonSetRequests, ...]

    @property
    def allocatable(self) -> Requests:
        """[C] cloudprovider/types.go InstanceType.Allocatable: capacity - Overhead.Total()
        (kube-reserved + system-reserved (none set) + eviction threshold)."""
        return Requests(self.capacity_cpu_m - self.kube_reserved_cpu_m,
                        self.capacity_memory_mib - self.kube_reserved_memory_mib - self.eviction_memory_mib)

    @property
    def daemonset_overhead(self) -> Requests:
        return Requests(sum(d.cpu_m for d in self.daemonsets), sum(d.memory_mib for d in self.daemonsets))

    @property
    def free(self) -> Requests:
        """What is left for the worker pod after the DaemonSets."""
        a, d = self.allocatable, self.daemonset_overhead
        return Requests(a.cpu_m - d.cpu_m, a.memory_mib - d.memory_mib)

    def fits(self, pod: Requests) -> bool:
        """[C] nodeclaim.go filterInstanceTypesByRequirements: daemon overhead + pod <= allocatable,
        and one pod slot left after the DaemonSets."""
        free = self.free
        return pod.cpu_m <= free.cpu_m and pod.memory_mib <= free.memory_mib and len(self.daemonsets) + 1 <= self.pods


def estimate(instance_type: str) -> NodeEstimate:
    """Karpenter's estimate for a Neuron NodePool node of `instance_type` with our EC2NodeClass
    (AL2023, no kubelet block: no maxPods, podsPerCore, kubeReserved, systemReserved or evictionHard)."""
    facts = INSTANCE_TYPES[instance_type]
    # [P] types.go memory(): MiB minus ceil(MiB x VM_MEMORY_OVERHEAD_PERCENT) (x86: no Graviton CMA term).
    memory = facts.memory_mib - math.ceil(facts.memory_mib * VM_MEMORY_OVERHEAD_PERCENT)
    # [P] types.go NewInstanceType: AL2023 has UsesENILimitedMemoryOverhead, so kube-reserved memory uses
    # ENILimitedPods with 0 reserved ENIs; pods() (capacity) uses RESERVED_ENIS (SupportsENILimitedPodDensity).
    reserved_pods = eni_limited_pods(facts, reserved_enis=0)
    return NodeEstimate(
        instance_type=instance_type,
        capacity_cpu_m=facts.vcpus * 1000,  # [P] types.go cpu(): DefaultVCpus
        capacity_memory_mib=memory,
        pods=eni_limited_pods(facts),  # [P] types.go pods()
        kube_reserved_cpu_m=kube_reserved_cpu_m(facts.vcpus),
        kube_reserved_memory_mib=11 * reserved_pods + 255,  # [P] types.go kubeReservedResources
        eviction_memory_mib=EVICTION_HARD_MEMORY_MIB,
        daemonsets=tuple(d for d in DAEMONSETS if d.lands_on_neuron_nodes),
    )
