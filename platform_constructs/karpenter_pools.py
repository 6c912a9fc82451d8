"""Karpenter EC2NodeClasses and NodePools as plain Kubernetes manifests (dicts).

Pure functions of plain values (the cluster's and the environment's names, the worker shape), so the
tests validate exactly what is deployed against the Karpenter CRDs, and the NodePool limits follow the
accelerator preset and replica bounds (config/worker_shape.py).
"""

from __future__ import annotations

from config.names import (
    INFERENCE_NODE_ROLE, NEURON_RESOURCE, NEURON_TAINT_KEY, NODE_ROLE_LABEL, NODEPOOL_BY_FAMILY, NODEPOOL_DEFAULT,
)
from config.node_io import NEURON_ROOT_GIB, NEURON_ROOT_GP3, Gp3Root
from config.presets import PRESETS
from config.project import PROJECT_SLUG, PROJECT_TAG
from config.versions import AL2023_AMI_ALIAS
from config.worker_shape import WorkerShape
from platform_constructs.tags import EKS_CLUSTER_NAME_TAG, KARPENTER_DISCOVERY_TAG

NODECLASS_DEFAULT = "default"
NODECLASS_NEURON = "neuron"
# Root volumes: the Neuron DLC image (~15 GB), the model weights (16 GB for Llama-3-8B in bf16) and the
# Neuron compilation cache all land on the root volume, with room for a second model during a rollout.
DEFAULT_ROOT_GIB = 100
# NEURON_ROOT_GIB (500): config/node_io.py, beside the volume's IOPS and throughput.
# The Neuron nodes pull their multi-GB image with the SOCI snapshotter's parallel pull/unpack mode: nodeadm's
# FastImagePull feature gate (awslabs/amazon-eks-ami nodeadm/api/v1alpha1/nodeconfig_types.go: "enables a
# parallel image pull for container images. This will use more instance CPU, Memory, and EBS I/O during
# image pull"; nodeadm ignores it below 4 vCPU / 7 GiB, nodeadm/internal/containerd/config.go
# UseSOCISnapshotter, which every inf2/trn1 type clears). nodeadm then writes the soci-snapshotter-grpc
# config with 20 concurrent 16 MB range GETs and 12 unpacks per image and points containerd and the
# kubelet at it (config.go, snapshotter/soci-snapshotter.config.toml). Measured on the AWS vLLM DLC
# (9.35 GB): 39.6 s instead of 130.8 s (aws-samples/karpenter-blueprints blueprints/soci-snapshotter,
# "Results"); config/cold_start.py budgets the pull from that rate. Karpenter merges this NodeConfig with
# the one it generates for AL2023 (the EC2NodeClass CRD: "Karpenter will merge certain fields into this
# UserData"), as the blueprint's EC2NodeClass does. Not for the default class: small images gain nothing
# and the mode costs CPU and memory during pulls. The AMI must be AL2023 v20250821 or later
# (config/versions.py AL2023_FAST_IMAGE_PULL_SINCE).
FAST_IMAGE_PULL_USER_DATA = """apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  featureGates:
    FastImagePull: true
"""
EXPIRE_AFTER = "720h"  # nodes are replaced within 30 days, so AMI/kernel fixes roll out
# IMDSv2 only, and its token answers travel one hop: they reach the node's own network namespace
# (kubelet, and hostNetwork pods: VPC CNI, kube-proxy, Pod Identity agent, CloudWatch agent and Fluent
# Bit of the add-on) but not a pod's, so no pod can take the node role's credentials. "In a container
# environment, if the hop limit is 1, the IMDSv2 response does not return because going to the
# container is considered an additional network hop" (EC2 User Guide, "Use the Instance Metadata
# Service", IMDSv2 considerations); EKS Best Practices (aws/aws-eks-best-practices latest/bpg/security/
# iam.adoc, "Restrict access to the instance profile assigned to the worker node") recommends exactly
# --http-tokens required --http-put-response-hop-limit 1 when pods get AWS access from Pod Identity.
# Karpenter 1.14.1's EC2NodeClass CRD: 1..64, default 1 (spec.metadataOptions.httpPutResponseHopLimit); said here anyway.
IMDS_HOP_LIMIT = 1


def node_role_name(cluster_name: str) -> str:
    return f"KarpenterNode-{cluster_name}"[:64]


def ec2_node_class(name: str, *, cluster_name: str, environment: str, root_gib: int,
                   fast_root: Gp3Root | None = None, user_data: str | None = None) -> dict:
    ebs = {"volumeSize": f"{root_gib}Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}
    if fast_root:
        # The image unpack and the weights download write to the root volume: provisioned above gp3's
        # 3,000 IOPS / 125 MiB/s default (config/node_io.py NEURON_ROOT_GP3: figures, sources, cost).
        ebs.update(iops=fast_root.iops, throughput=fast_root.throughput_mibps)
    spec_extra = {"userData": user_data} if user_data else {}
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name},
        "spec": {
            "role": node_role_name(cluster_name),
            # Pinned, never @latest (see config/versions.py). For inf2/trn1 the alias resolves to the
            # Neuron variant of the same AL2023 release.
            "amiSelectorTerms": [{"alias": AL2023_AMI_ALIAS}],
            "subnetSelectorTerms": [{"tags": {KARPENTER_DISCOVERY_TAG: cluster_name}}],
            # The cluster security group EKS creates (and tags): nodes talk to the control plane and
            # to the core nodes' pods exactly as the managed node group does.
            "securityGroupSelectorTerms": [{"tags": {EKS_CLUSTER_NAME_TAG: cluster_name}}],
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": True, "ebs": ebs}],
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpProtocolIPv6": "disabled",
                "httpTokens": "required",
                "httpPutResponseHopLimit": IMDS_HOP_LIMIT,
            },
            "tags": {PROJECT_TAG: PROJECT_SLUG, "environment": environment},
            **spec_extra,
        },
    }


def _requirement(key: str, operator: str, values: list[str]) -> dict:
    return {"key": key, "operator": operator, "values": values}


def default_node_pool() -> dict:
    """General-purpose x86 capacity (c/m/r, gen 6+), spot first with on-demand fallback."""
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": NODEPOOL_DEFAULT},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODECLASS_DEFAULT},
                    "requirements": [
                        _requirement("kubernetes.io/arch", "In", ["amd64"]),
                        _requirement("kubernetes.io/os", "In", ["linux"]),
                        _requirement("karpenter.sh/capacity-type", "In", ["spot", "on-demand"]),
                        _requirement("karpenter.k8s.aws/instance-category", "In", ["c", "m", "r"]),
                        _requirement("karpenter.k8s.aws/instance-generation", "Gt", ["5"]),
                    ],
                    "expireAfter": EXPIRE_AFTER,
                },
            },
            "limits": {"cpu": "256", "memory": "1024Gi"},
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": "1m",
                "budgets": [{"nodes": "10%"}],
            },
        },
    }


def _family_limits(family: str, shape: WorkerShape) -> dict:
    """Room for max_replicas worker nodes of the largest instance in the family (or of the preset).

    Karpenter holds a NodePool's limits against the *capacity* of its nodes, not their allocatable
    (kubernetes-sigs/karpenter pkg/controllers/provisioning/scheduling/scheduler.go
    filterByRemainingResources compares it.Capacity). The nominal vCPU and memory of the instance table
    (config/node_fit.py, via the preset) bound both Karpenter's capacity estimate (memory minus the VM
    overhead) and what a booted node reports, so max_replicas nodes always fit the limits.
    """
    sizes = [shape.preset] if shape.family == family else [p for p in PRESETS.values() if p.family == family]
    largest = max(sizes, key=lambda p: p.neuron_devices)
    nodes = shape.max_nodes
    return {
        NEURON_RESOURCE: str(largest.neuron_devices * nodes),
        "cpu": str(largest.vcpus * nodes),
        "memory": f"{largest.memory_gib * nodes}Gi",
    }


def accelerator_disruption_budgets(shape: WorkerShape) -> list[dict]:
    """Karpenter's voluntary disruptions of the Neuron nodes (docs/charts.md "Disruption").

    One node at a time: the NodePool limits hold one node beyond the worker pods
    (config/worker_shape.py DISRUPTION_SURGE_NODES), so for drift Karpenter launches the replacement
    node before it drains the old one, and the worker's preStop (serving/drain.py) moves the node's
    replicas while the other pods' replicas serve.

    When the environment's minimum fits on one worker pod (min_pods < 2: one replica, or all of them on
    one node) nothing else serves while that pod drains, so drift gets no budget at all ("Drifted":
    0): the node is never voluntarily taken from a running environment. Budgets never block expiry
    (Karpenter 1.14: "NodePool Disruption Budgets do not prevent Karpenter from terminating expired
    nodes"), so the node is still recycled after expireAfter (EXPIRE_AFTER) -- the fixes drift would
    have brought arrive then. Consolidation is WhenEmpty: it only ever takes a node without a worker pod.
    """
    budgets = [{"nodes": "1"}]
    if shape.min_pods < 2:
        budgets.append({"nodes": "0", "reasons": ["Drifted"]})
    return budgets


def accelerator_node_pool(name: str, family: str, shape: WorkerShape) -> dict:
    """Neuron capacity: on-demand only (a spot reclaim costs minutes of model load), tainted so
    only pods that tolerate aws.amazon.com/neuron land there, consolidated only when empty."""
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {NODE_ROLE_LABEL: INFERENCE_NODE_ROLE}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODECLASS_NEURON},
                    "requirements": [
                        _requirement("karpenter.k8s.aws/instance-family", "In", [family]),
                        _requirement("karpenter.sh/capacity-type", "In", ["on-demand"]),
                        _requirement("kubernetes.io/arch", "In", ["amd64"]),
                    ],
                    "taints": [{"key": NEURON_TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
                    "expireAfter": EXPIRE_AFTER,
                    # Let a replica drain (Ray Serve graceful shutdown) before the node goes.
                    "terminationGracePeriod": "1h",
                },
            },
            "limits": _family_limits(family, shape),
            "disruption": {
                # Never repack a node that serves a loaded model; remove it once it is empty.
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": "10m",
                "budgets": accelerator_disruption_budgets(shape),
            },
        },
    }


def node_classes(*, cluster_name: str, environment: str) -> list[dict]:
    return [
        ec2_node_class(NODECLASS_DEFAULT, cluster_name=cluster_name, environment=environment,
                       root_gib=DEFAULT_ROOT_GIB),
        ec2_node_class(NODECLASS_NEURON, cluster_name=cluster_name, environment=environment,
                       root_gib=NEURON_ROOT_GIB, fast_root=NEURON_ROOT_GP3, user_data=FAST_IMAGE_PULL_USER_DATA),
    ]


def node_pools(shape: WorkerShape) -> list[dict]:
    """The default pool, then one pool per accelerator family; limits sized for `shape` (cfg.worker_shape)."""
    return [default_node_pool()] + [accelerator_node_pool(pool, family, shape)
                                    for family, pool in NODEPOOL_BY_FAMILY.items()]
