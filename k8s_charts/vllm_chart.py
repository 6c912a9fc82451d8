"""The `vllm` namespace: the RayService serving Llama-3 on Inferentia2/Trainium, and its NetworkPolicies."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from config import names
from config.presets import CACHE_INIT_CPU, CACHE_INIT_MEMORY
from config.kubernetes import app_labels, container_security, pod_security
from config.secrets import API_KEY_ENV, API_KEY_SECRET, HF_TOKEN_KEY, HF_TOKEN_SECRET
from config.versions import RAY_VERSION
from k8s_charts import rayservice as rs
from k8s_charts.inputs import ChartInputs
from k8s_charts.network_policies import ray_network_policies
from k8s_charts.objects import PlatformChart, custom_resource, namespace
from serving.deployment import NEURON_CORES_RESOURCE
from serving.settings import RAY_SERVE_ENV
from k8s_charts.serve_config import ARTIFACTS_MOUNT, CACHE_MOUNT, HF_HOME, serve_config_yaml

APP_LABELS = app_labels(names.RAYSERVICE_NAME)
WORKER_GROUP = "neuron-group"
# The head runs GCS, the dashboard, the Serve controller and an HTTP proxy -- no model (num-cpus 0).
# Requests equal limits (Guaranteed QoS) so the head is the last pod evicted from a core node.
HEAD_CPU = "2"
HEAD_MEMORY = "8Gi"
# The head takes no serve traffic (KubeRay's excludeHeadPodFromServeSvc): it runs no replica, so a
# request through its proxy would only add a network hop to a worker, share the head's 2 CPUs with GCS
# and the Serve controller, and be cut by a head restart. The serve Service then holds exactly the
# workers that pass KubeRay's readiness probe (raylet + their own proxy's /-/healthz, on localhost), and
# the operator never needs the head's serve port (see network_policies.py and docs/charts.md).
HEAD_SERVES_TRAFFIC = False
HEAD_PORTS = (
    ("gcs", names.RAY_GCS_PORT), ("dashboard", names.RAY_DASHBOARD_PORT), ("client", names.RAY_CLIENT_PORT),
    ("serve", names.SERVE_PORT), ("metrics", names.RAY_METRICS_PORT),
)
# Node-local cache directory of the worker: the same path on the node as in the container.
CACHE_HOST_PATH = CACHE_MOUNT
# The uid/gid the Ray containers run as: the serving image's USER (serving/Dockerfile), set explicitly
# so the cache ownership below never depends on what the image says.
RAY_UID = 1000
RAY_GID = 1000
# The init container that hands the node-local cache to RAY_UID. The kubelet creates a
# DirectoryOrCreate hostPath as root:root 0755 and fsGroup does not apply to hostPath, so without it
# uid 1000 cannot create HF_HOME or the compiled-artifacts directory and no replica ever starts.
# It runs mkdir + chown once per pod start: fixed, tiny requests (requests = limits) from config/presets.py,
# which also counts KubeRay's injected `wait-gcs-ready` init container when it checks that the pod fits.
CACHE_INIT_CONTAINER = "cache-permissions"
# Directories the worker writes under the cache; created by the init container, owned by RAY_UID.
CACHE_DIRS = (CACHE_MOUNT, HF_HOME, ARTIFACTS_MOUNT)


def _secret_env(inputs: ChartInputs) -> list[dict[str, Any]]:
    """Ray Serve tuning the serving app expects on every Ray pod, then the secrets."""
    env = [{"name": k, "value": v} for k, v in sorted(RAY_SERVE_ENV.items())]
    env += [{"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": API_KEY_SECRET, "key": API_KEY_ENV}}}]
    if inputs.hf_token_secret:
        env.append({"name": HF_TOKEN_KEY, "valueFrom": {"secretKeyRef": {"name": HF_TOKEN_SECRET, "key": HF_TOKEN_KEY}}})
    return env


def _container_security() -> dict[str, Any]:
    """Ray containers (and KubeRay's autoscaler sidecar): the image's non-root user, no capabilities."""
    return container_security(RAY_UID, RAY_GID)


def cache_init_container(image: str) -> dict[str, Any]:
    """uid 0 with CAP_CHOWN only: create the cache directories and give them to RAY_UID.

    Not recursive: everything below is written by RAY_UID itself, and a recursive chown of many GB of
    weights would slow every restart. mkdir runs before chown, so on a restart (the directories now
    belong to RAY_UID, 0755) root needs no CAP_DAC_OVERRIDE: `mkdir -p` of existing directories is a no-op.
    """
    dirs = " ".join(CACHE_DIRS)
    resources = {"cpu": CACHE_INIT_CPU, "memory": CACHE_INIT_MEMORY}
    return {
        "name": CACHE_INIT_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", f"mkdir -p {dirs} && chown {RAY_UID}:{RAY_GID} {dirs}"],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "securityContext": container_security(0, 0, read_only_root=True, add_capabilities=("CHOWN",)),
        "volumeMounts": [{"name": "model-cache", "mountPath": CACHE_MOUNT}],
    }


def _prestop() -> dict[str, Any]:
    # Leave the Ray cluster cleanly so Serve drains this node's replicas.
    return {"preStop": {"exec": {"command": ["/bin/sh", "-c", "ray stop"]}}}


def head_template(inputs: ChartInputs) -> dict[str, Any]:
    container = {
        "name": "ray-head",
        "image": inputs.serving_image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in HEAD_PORTS],
        "resources": {"requests": {"cpu": HEAD_CPU, "memory": HEAD_MEMORY}, "limits": {"cpu": HEAD_CPU, "memory": HEAD_MEMORY}},
        "env": _secret_env(inputs),
        "lifecycle": _prestop(),
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "ray-logs", "mountPath": "/tmp/ray"}],
    }
    return {
        "metadata": {"labels": dict(APP_LABELS)},
        "spec": {
            "containers": [container],
            "securityContext": pod_security(),
            "nodeSelector": {names.NODE_ROLE_LABEL: names.CORE_NODE_ROLE},
            "volumes": [{"name": "ray-logs", "emptyDir": {}}],
        },
    }


def worker_template(inputs: ChartInputs) -> dict[str, Any]:
    shape = inputs.cfg.worker_shape
    resources = {"cpu": str(shape.cpu), "memory": f"{shape.memory_gib}Gi",
                 names.NEURON_RESOURCE: str(shape.neuron_devices)}
    container = {
        "name": "ray-worker",
        "image": inputs.serving_image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "env": _secret_env(inputs) + [
            {"name": "HF_HOME", "value": HF_HOME},
            {"name": "NEURON_RT_LOG_LEVEL", "value": "INFO"},
        ],
        "lifecycle": _prestop(),
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "ray-logs", "mountPath": "/tmp/ray"},
            {"name": "model-cache", "mountPath": CACHE_MOUNT},
        ],
    }
    return {
        "metadata": {"labels": dict(APP_LABELS)},
        "spec": {
            "schedulerName": names.NEURON_SCHEDULER_NAME,
            "initContainers": [cache_init_container(inputs.serving_image)],
            "containers": [container],
            "securityContext": pod_security(),
            # One worker pod per node, on the preset's instance type from the Karpenter NodePool.
            "nodeSelector": {names.NODEPOOL_LABEL: shape.pool, "node.kubernetes.io/instance-type": shape.instance_type},
            "tolerations": [{"key": names.NEURON_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
            # Workers never call the Kubernetes API.
            "automountServiceAccountToken": False,
            # Serve's graceful shutdown (60 s) plus `ray stop`.
            "terminationGracePeriodSeconds": 90,
            "volumes": [
                # vLLM and Ray exchange tensors through shared memory; the default 64 MiB is far too small.
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{max(2, shape.memory_gib // 4)}Gi"}},
                {"name": "ray-logs", "emptyDir": {}},
                # Node-local, so a restarted worker on the same node reuses downloaded weights and
                # Neuron-compiled artifacts; a brand-new node compiles once.
                {"name": "model-cache", "hostPath": {"path": CACHE_HOST_PATH, "type": "DirectoryOrCreate"}},
            ],
        },
    }


def rayservice_spec(inputs: ChartInputs) -> rs.RayServiceSpec:
    cfg, shape = inputs.cfg, inputs.cfg.worker_shape
    return rs.RayServiceSpec(
        name=names.RAYSERVICE_NAME,
        namespace=names.VLLM_NAMESPACE,
        ray_version=RAY_VERSION,
        serve_config_v2=serve_config_yaml(cfg),
        labels=dict(APP_LABELS),
        # KubeRay gives up after the cold-start budget, the same deadline the pipeline's smoke step waits.
        annotations={rs.INITIALIZING_TIMEOUT_ANNOTATION: shape.cold_start.initializing_timeout},
        head=rs.HeadGroup(
            pod_template=head_template(inputs),
            # num-cpus 0: no replica ever lands on the head; dashboard on all interfaces for KubeRay's
            # health checks (reachable only inside the namespace, see the NetworkPolicies).
            ray_start_params={"num-cpus": "0", "dashboard-host": "0.0.0.0"},
        ),
        workers=(rs.WorkerGroup(
            group_name=WORKER_GROUP,
            pod_template=worker_template(inputs),
            min_replicas=shape.min_pods,
            max_replicas=shape.max_pods,
            ray_start_params={"resources": rs.ray_resources_param({NEURON_CORES_RESOURCE: shape.ray_neuron_cores})},
        ),),
        exclude_head_pod_from_serve_svc=not HEAD_SERVES_TRAFFIC,
        enable_in_tree_autoscaling=True,
        autoscaler=rs.AutoscalerOptions(
            # A Neuron node is expensive to bring back: keep an idle one for 10 minutes.
            idle_timeout_seconds=600,
            upscaling_mode="Default",
            resources={"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
            security_context=_container_security(),
        ),
    )


class VllmChart(PlatformChart):
    """Namespace `vllm`: the RayService (names.RAYSERVICE_NAME) and the NetworkPolicies around it."""

    def __init__(self, scope: Construct, id: str, inputs: ChartInputs) -> None:
        super().__init__(scope, id, namespace=names.VLLM_NAMESPACE)
        # The workers mount a node-local hostPath cache, which the baseline Pod Security Standard
        # forbids, so nothing is enforced here; audit against baseline keeps other drift visible.
        self.namespace_obj = namespace(self, names.VLLM_NAMESPACE, {"pod-security.kubernetes.io/audit": "baseline"})
        self.rayservice = custom_resource(self, "rayservice", rayservice_spec(inputs).to_manifest())
        self.rayservice.add_dependency(self.namespace_obj)
        ray_network_policies(self, APP_LABELS, inputs.ingress_namespace, head_serves=HEAD_SERVES_TRAFFIC)
