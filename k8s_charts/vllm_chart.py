"""The `vllm` namespace: the RayService serving Llama-3 on Inferentia2/Trainium, and its NetworkPolicies."""

from __future__ import annotations

from typing import Any

import cdk8s
import cdk8s_plus_27 as kplus
from constructs import Construct

from config import names
from config.cold_start import compile_wait_seconds
from config.kubernetes import BASELINE, RESTRICTED, app_labels, container_security, pod_security, pod_security_labels
from config.secrets import API_KEYS_DIR, API_KEYS_SECRET, HF_TOKEN_KEY, HF_TOKEN_SECRET, RAY_AUTH_SECRET
from config.versions import RAY_VERSION
from k8s_charts import rayservice as rs
from k8s_charts.ingress import add_alb_objects
from k8s_charts.inputs import ChartInputs
from k8s_charts.network_policies import ray_network_policies
from k8s_charts.objects import PlatformChart, custom_resource, namespace
from serving.deployment import GRACEFUL_SHUTDOWN_TIMEOUT_S, NEURON_CORES_RESOURCE
from serving.settings import RAY_SERVE_ENV
from k8s_charts.serve_config import (
    CACHE_MOUNT, HF_HOME, WEIGHTS_DIR, compiled_artifacts_dir, model_compile_key, serve_config_yaml,
)

APP_LABELS = app_labels(names.RAYSERVICE_NAME)
# The labels every pod of this RayService carries: ours (the pod templates') plus KubeRay's
# ray.io/is-ray-node. The NetworkPolicies select the Ray pods by them (the RayCluster's own name,
# ray.io/cluster, gets a random suffix per RayService generation and cannot be named at synth time).
RAY_POD_LABELS = {**APP_LABELS, **rs.RAY_NODE_LABELS}
WORKER_GROUP = "neuron-group"
# Pod Security: `baseline` enforced (no hostPath, host namespaces, privilege or added capabilities), so a
# privileged pod in the namespace is refused. Our templates also meet `restricted` (non-root per
# container, drop ALL, RuntimeDefault, only emptyDir/secret/projected volumes), and so do the containers
# KubeRay 1.7 derives from them (wait-gcs-ready copies the Ray container's securityContext, the
# autoscaler takes autoscalerOptions.securityContext); restricted is audited and warned first, so what a
# live operator adds shows as a warning on apply instead of a pod the API server refuses.
NAMESPACE_POD_SECURITY = pod_security_labels(BASELINE, audit_warn=RESTRICTED)
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
# The uid/gid the Ray containers run as: the serving image's USER (serving/Dockerfile), set explicitly.
# It is also the pods' fsGroup, so the mounted API keys (mode 0440) and the cache are the group's.
RAY_UID = 1000
RAY_GID = 1000
# The worker's model cache: the weights and compiled artifacts the model-fetch init container copies
# from the S3 model store (docs/model-store.md), read by the engine. An emptyDir: baseline Pod Security
# forbids a hostPath, an emptyDir is 0777 and fsGroup-owned (uid 1000 writes it with no root init
# container), and nothing node-local is needed any more: a new pod on a new node fetches in seconds.
MODEL_CACHE_VOLUME = "model-cache"
MODEL_FETCH_CONTAINER = "model-fetch"
# Ours, not a preset figure: weights (16 GB), the original/ checkpoint a full snapshot may also hold
# (16 GB) and the compiled artifacts of every shape fit many times over, yet a runaway download or
# compile is evicted long before it fills the Neuron node's 500 GiB root volume
# (config/node_io.py NEURON_ROOT_GIB; tests/k8s_charts/test_rayservice.py checks it).
MODEL_CACHE_SIZE_LIMIT_GIB = 200
# The named API keys (one file per key, its JSON value: serving/keys.py) from the synced Secret,
# read-only, group-readable by fsGroup only.
API_KEYS_VOLUME = "api-keys"
API_KEYS_MODE = 0o440
# The Ray containers get no Kubernetes API token (automountServiceAccountToken false on both pods): only
# KubeRay's autoscaler sidecar calls the API (it patches the RayCluster's replicas), so only it mounts
# this projected token, at the path the Ray autoscaler's client reads (ray 2.60
# ray/autoscaler/_private/kuberay/node_provider.py IN_CLUSTER_TOKEN_PATH / IN_CLUSTER_CA_CERT_PATH;
# the namespace comes from KubeRay's RAY_CLUSTER_NAMESPACE env). The sources are those of the kubelet's
# own kube-api-access volume, so the token is bound to the pod and rotated by the kubelet.
AUTOSCALER_TOKEN_VOLUME = "autoscaler-kube-api-access"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION_SECONDS = 3607  # the kubelet's own default for kube-api-access


def _env(inputs: ChartInputs) -> list[dict[str, Any]]:
    """Ray Serve tuning the serving app expects on every Ray pod, then the HF token if configured. The
    API keys are files (API_KEYS_DIR); KubeRay adds RAY_AUTH_MODE and RAY_AUTH_TOKEN (authOptions)."""
    env = [{"name": k, "value": v} for k, v in sorted(RAY_SERVE_ENV.items())]
    if inputs.hf_token_secret:
        env.append({"name": HF_TOKEN_KEY, "valueFrom": {"secretKeyRef": {"name": HF_TOKEN_SECRET, "key": HF_TOKEN_KEY}}})
    return env


def _container_security() -> dict[str, Any]:
    """Ray containers (and KubeRay's autoscaler sidecar): the image's non-root user, no capabilities."""
    return container_security(RAY_UID, RAY_GID)


def _pod_security() -> dict[str, Any]:
    return {**pod_security(), "fsGroup": RAY_GID}


def _api_keys_volume() -> dict[str, Any]:
    return {"name": API_KEYS_VOLUME, "secret": {"secretName": API_KEYS_SECRET, "defaultMode": API_KEYS_MODE}}


def _api_keys_mount() -> dict[str, Any]:
    return {"name": API_KEYS_VOLUME, "mountPath": API_KEYS_DIR, "readOnly": True}


def autoscaler_token_volume() -> dict[str, Any]:
    return {"name": AUTOSCALER_TOKEN_VOLUME, "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
    ]}}


# What `ray stop` itself may take after the drain, within the pod's grace period.
RAY_STOP_GRACE_S = 30
# The worker's preStop (serving/drain.py) asks GCS to drain its Ray node with Serve's graceful shutdown
# budget as the deadline: Serve stops the node's replicas gracefully at once (the deadline minus
# graceful_shutdown_timeout_s has come; ray 2.60 ray/serve/_private/deployment_state.py
# _partition_groups_to_stop), starts their replacements elsewhere and drains the node's proxy, while the
# other replicas take the new requests. A bare `ray stop` killed them all at once (docs/charts.md "Disruption").
DRAIN_DEADLINE_S = GRACEFUL_SHUTDOWN_TIMEOUT_S
# Beyond the deadline, until no Serve actor is left on the node: the controller noticing the drain (its
# loop), the proxy's drain checks (every 5 s, proxy_state.py PROXY_DRAIN_CHECK_PERIOD_S) and a replica's
# force kill once its graceful shutdown times out.
DRAIN_SETTLE_S = 15
DRAIN_WAIT_S = DRAIN_DEADLINE_S + DRAIN_SETTLE_S


def worker_drain_command() -> list[str]:
    """The worker's preStop command: the image's Python runs serving/drain.py (COPY serving /app/serving)."""
    return ["python", "-m", "serving.drain", "--deadline-s", str(DRAIN_DEADLINE_S), "--wait-s", str(DRAIN_WAIT_S)]


def _prestop(*, drain: bool) -> dict[str, Any]:
    # The worker drains its Ray node first (serving/drain.py, which ends with `ray stop`); the head runs
    # no replica (num-cpus 0) and just leaves.
    command = worker_drain_command() if drain else ["/bin/sh", "-c", "ray stop"]
    return {"preStop": {"exec": {"command": command}}}


def model_fetch_command(inputs: ChartInputs) -> list[str]:
    """The worker's first step: weights (and artifacts, if published) from the model store to the
    model cache; the lease decides whether this worker compiles and publishes (serving/model_store.py)."""
    cfg = inputs.cfg
    key = model_compile_key(cfg)
    return ["python", "-m", "serving.model_store", "fetch", "--bucket", inputs.model_store_bucket,
            "--model", cfg.model_id, "--revision", cfg.model_revision, "--weights-dir", WEIGHTS_DIR,
            "--compile-key", key, "--artifacts-dir", compiled_artifacts_dir(key),
            "--wait-s", str(compile_wait_seconds(cfg.worker_shape.preset))]


def model_fetch_container(inputs: ChartInputs, resources: dict[str, str]) -> dict[str, Any]:
    return {
        "name": MODEL_FETCH_CONTAINER,
        "image": inputs.serving_image,
        "imagePullPolicy": "IfNotPresent",
        "command": model_fetch_command(inputs),
        # The main container's CPU and memory (the pod's request is the larger of the two, so this
        # costs nothing): s3transfer's threads and the hub fallback use them.
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        # AWS credentials come from EKS Pod Identity (the ray-worker service account); the region
        # explicitly, so the S3 endpoint never depends on what the webhook injects.
        "env": [{"name": "AWS_REGION", "value": inputs.cfg.region}, {"name": "HF_HOME", "value": HF_HOME}]
               + [e for e in _env(inputs) if e["name"] == HF_TOKEN_KEY],
        "securityContext": _container_security(),
        "volumeMounts": [{"name": MODEL_CACHE_VOLUME, "mountPath": CACHE_MOUNT}],
    }


def head_template(inputs: ChartInputs) -> dict[str, Any]:
    container = {
        "name": "ray-head",
        "image": inputs.serving_image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in HEAD_PORTS],
        "resources": {"requests": {"cpu": HEAD_CPU, "memory": HEAD_MEMORY}, "limits": {"cpu": HEAD_CPU, "memory": HEAD_MEMORY}},
        "env": _env(inputs),
        "lifecycle": _prestop(drain=False),
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "ray-logs", "mountPath": names.RAY_LOG_DIR}, _api_keys_mount()],
    }
    return {
        "metadata": {"labels": dict(APP_LABELS)},
        "spec": {
            "containers": [container],
            "securityContext": _pod_security(),
            "nodeSelector": {names.NODE_ROLE_LABEL: names.CORE_NODE_ROLE},
            # No API token for the Ray container; the autoscaler sidecar mounts its own (autoscaler_token_volume).
            "automountServiceAccountToken": False,
            "volumes": [{"name": "ray-logs", "emptyDir": {}}, _api_keys_volume(), autoscaler_token_volume()],
        },
    }


def worker_template(inputs: ChartInputs) -> dict[str, Any]:
    shape = inputs.cfg.worker_shape
    host = {"cpu": str(shape.cpu), "memory": f"{shape.memory_gib}Gi"}
    resources = {**host, names.NEURON_RESOURCE: str(shape.neuron_devices)}
    container = {
        "name": names.RAY_WORKER_CONTAINER,
        "image": inputs.serving_image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "env": _env(inputs) + [
            {"name": "HF_HOME", "value": HF_HOME},
            {"name": "NEURON_RT_LOG_LEVEL", "value": "INFO"},
        ],
        "lifecycle": _prestop(drain=True),
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "ray-logs", "mountPath": names.RAY_LOG_DIR},
            {"name": MODEL_CACHE_VOLUME, "mountPath": CACHE_MOUNT},
            _api_keys_mount(),
        ],
    }
    return {
        "metadata": {"labels": dict(APP_LABELS)},
        "spec": {
            "schedulerName": names.NEURON_SCHEDULER_NAME,
            # Its Pod Identity association (stacks/inference_stack.py) is the model store's worker role.
            "serviceAccountName": names.RAY_WORKER_SERVICE_ACCOUNT,
            "initContainers": [model_fetch_container(inputs, host)],
            "containers": [container],
            "securityContext": _pod_security(),
            # One worker pod per node, on the preset's instance type from the Karpenter NodePool.
            "nodeSelector": {names.NODEPOOL_LABEL: shape.pool, "node.kubernetes.io/instance-type": shape.instance_type},
            "tolerations": [{"key": names.NEURON_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
            # Workers never call the Kubernetes API (Pod Identity mounts its own token, for AWS only).
            "automountServiceAccountToken": False,
            # The preStop's drain wait (Serve's graceful shutdown and the settling after it) plus `ray stop`
            # (derived: a longer Serve drain must not be cut short by the kubelet's SIGKILL).
            "terminationGracePeriodSeconds": DRAIN_WAIT_S + RAY_STOP_GRACE_S,
            "volumes": [
                # vLLM and Ray exchange tensors through shared memory; the default 64 MiB is far too small.
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{max(2, shape.memory_gib // 4)}Gi"}},
                {"name": "ray-logs", "emptyDir": {}},
                # Survives a container restart; a new pod fetches again (MODEL_CACHE_VOLUME above).
                {"name": MODEL_CACHE_VOLUME, "emptyDir": {"sizeLimit": f"{MODEL_CACHE_SIZE_LIMIT_GIB}Gi"}},
                _api_keys_volume(),
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
            # calls (reachable only from the operator and the Ray pods, and token-authenticated).
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
            volume_mounts=({"name": AUTOSCALER_TOKEN_VOLUME, "mountPath": SERVICE_ACCOUNT_DIR, "readOnly": True},),
        ),
        # Ray's own token auth on the dashboard (its Jobs API runs code), GCS and client ports, with the
        # token ESO syncs from Secrets Manager (secrets_chart.py), not one KubeRay generates: it survives
        # RayCluster replacements and is rotated like every other secret (docs/security.md).
        auth=rs.AuthOptions(secret_name=RAY_AUTH_SECRET),
    )


class VllmChart(PlatformChart):
    """Namespace `vllm`: the RayService (names.RAYSERVICE_NAME) and the NetworkPolicies around it."""

    def __init__(self, scope: Construct, id: str, inputs: ChartInputs) -> None:
        super().__init__(scope, id, namespace=names.VLLM_NAMESPACE)
        self.namespace_obj = namespace(self, names.VLLM_NAMESPACE, dict(NAMESPACE_POD_SECURITY))
        self.rayservice = custom_resource(self, "rayservice", rayservice_spec(inputs).to_manifest())
        self.rayservice.add_dependency(self.namespace_obj)
        # The workers' identity: no API token (automount off), only the Pod Identity association.
        self.worker_service_account = kplus.ServiceAccount(
            self, "ray-worker-sa", automount_token=False,
            metadata=cdk8s.ApiObjectMetadata(name=names.RAY_WORKER_SERVICE_ACCOUNT, labels=dict(APP_LABELS)))
        self.worker_service_account.node.add_dependency(self.namespace_obj)
        self.rayservice.add_dependency(self.worker_service_account)
        ray_network_policies(self, RAY_POD_LABELS, inputs.ingress_namespace, head_serves=HEAD_SERVES_TRAFFIC,
                             alb_cidr=inputs.cfg.alb_source_cidr)
        if inputs.cfg.alb_enabled:
            add_alb_objects(self, inputs.cfg, inputs.waf_acl_arn)
